# The ledger's image: the package installed when the image is built (nothing is installed when a
# container starts), run as an unprivileged user, `ledger` as its command. docker-compose.yml
# builds it; tests/unit/test_compose.py checks both files without Docker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install --no-cache-dir --root-user-action=ignore . \
    && rm -rf /build

RUN useradd --create-home --uid 10001 --user-group ledger
WORKDIR /app
# The message schemas and their examples, for `ledger publish schemas/inbound/...`.
COPY schemas/ schemas/
# `ledger stack up` keeps its state directory (LEDGER_STATE_DIR, ./.ledger) here.
RUN chown ledger:ledger /app
USER ledger

ENV LEDGER_LOG_FORMAT=json \
    LEDGER_API_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["ledger"]
CMD ["--help"]
