# paymod in a container: the HTTP API by default, or `paymod worker` / `paymod migrate` as the command.
#   docker build -t paymod .
#   docker run --rm -e PAYMOD_DATABASE_URL=postgresql://paymod@db/paymod paymod paymod migrate
#   docker run -d -p 9000:9000 -e PAYMOD_DATABASE_URL=... -e PAYMOD_CONFIG=/etc/paymod/paymod.toml \
#     -v /srv/paymod/paymod.toml:/etc/paymod/paymod.toml:ro paymod
# Secrets come from the environment (PAYMOD_PROVIDERS__<ID>__<OPTION>), never from the image.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 paymod
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER paymod
WORKDIR /home/paymod
ENV PYTHONUNBUFFERED=1
EXPOSE 9000
# Migrations run once per release (`paymod migrate`), not in every replica; a replica without a
# worker is `--no-worker`, and `paymod worker` runs the worker alone.
CMD ["paymod", "serve", "--host", "0.0.0.0", "--port", "9000", "--no-migrate"]
