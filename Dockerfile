# syntax=docker/dockerfile:1
# imagegate: build the wheel and its dependencies in one stage, run from a slim one that holds
# only the virtual environment (no compiler, no pip cache, no sources), as a non-root user.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/imagegate
COPY pyproject.toml README.md ./
COPY src ./src
# Every dependency ships a manylinux wheel, so no compiler is needed even here.
RUN /opt/imagegate/bin/pip install --no-cache-dir ".[otel]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/imagegate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMAGEGATE_DATA_DIR=/var/lib/imagegate
RUN groupadd --system --gid 10001 imagegate \
    && useradd --system --uid 10001 --gid imagegate --home-dir /var/lib/imagegate \
       --create-home --shell /usr/sbin/nologin imagegate
COPY --from=build /opt/imagegate /opt/imagegate
USER 10001:10001
WORKDIR /var/lib/imagegate
EXPOSE 8000
# /readyz: the database and the asset store answer (python, not curl: the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["imagegate"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
