# The local stand-ins of docker-compose.yaml, one image: the Redshift stand-in (the redshift-local package),
# moto's S3 (and Secrets Manager) server, and the mail and Slack receivers (docker/receivers.py). Build context: the repository root.
#
# PYTHON_BASE is python:3.12-slim where an image registry is reachable (the default), else the offline
# Debian base of docker/debian-base.sh (`make images` chooses). An extra CA certificate for pip comes in
# as the build secret `pip_ca`, as in airflow.Dockerfile.
ARG PYTHON_BASE=python:3.12-slim
FROM ${PYTHON_BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY constraints/airflow-3.3.1-python-3.12.txt /tmp/constraints.txt
COPY redshift-local/ /tmp/redshift-local/
# The stand-in package (its console script `redshift-local`) and the receivers' dependencies, at the
# versions of requirements-dev.txt and of the MWAA constraints.
RUN --mount=type=secret,id=pip_ca,mode=0444 \
    set -e; \
    if [ -s /run/secrets/pip_ca ]; then \
      { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat /run/secrets/pip_ca; } > /tmp/pip-ca.pem; \
      export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    PIP_CONSTRAINT=/tmp/constraints.txt pip install --no-cache-dir --disable-pip-version-check \
      /tmp/redshift-local sqlglot==30.15.0 "moto[server,s3]==5.2.5" aiosmtpd==1.4.6; \
    rm -rf /tmp/constraints.txt /tmp/pip-ca.pem /tmp/redshift-local; \
    useradd --system --uid 10001 --no-create-home devstack

WORKDIR /app
COPY devstack/ /app/devstack/
COPY docker/receivers.py docker/healthcheck.py /app/
USER devstack
EXPOSE 5000 5439 8090 8091 1025 8025
# The command (which stand-in) is chosen per service in docker-compose.yaml.
CMD ["redshift-local", "--host", "0.0.0.0", "--port", "5439"]
