# syntax=docker/dockerfile:1

# Both stages use the same base image, so the venv's interpreter path
# (/usr/local/bin/python3.11) exists in the final stage as it did in the builder.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/responder
COPY pyproject.toml README.md ./
COPY responder ./responder
# A regular (not editable) install, so the image needs nothing from /src. pip compiles the .pyc
# files here, because the final stage runs with a read-only root filesystem.
RUN /opt/responder/bin/pip install . \
    && /opt/responder/bin/pip uninstall --yes pip setuptools \
    && mkdir -p /staging/var/lib/responder /staging/etc/falco-responder/config

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="falco-responder" \
      org.opencontainers.image.description="Receive Falco alerts, match them against YAML playbooks and respond in Kubernetes." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

ENV PATH=/opt/responder/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    RESPONDER_JOURNAL__PATH=/var/lib/responder/journal.db

COPY --from=builder /opt/responder /opt/responder
# The journal directory and the config mount point belong to the runtime user; in a pod an
# emptyDir and a ConfigMap are mounted over them.
COPY --from=builder --chown=65532:65532 /staging/var/lib/responder /var/lib/responder
COPY --from=builder /staging/etc/falco-responder /etc/falco-responder
COPY playbooks /etc/falco-responder/playbooks

WORKDIR /etc/falco-responder
USER 65532:65532
EXPOSE 2804
ENTRYPOINT ["responder"]
CMD ["serve", "--config", "/etc/falco-responder/config/responder.yaml"]
