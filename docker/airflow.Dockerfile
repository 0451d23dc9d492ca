# Airflow for the local compose stack: the MWAA versions (Airflow 3.3.1, Python 3.12) plus our
# requirements.txt, installed under the same constraints as MWAA (the local copy of the file).
# Build context: the repository root (see docker-compose.yaml).
#
# AIRFLOW_BASE is the official image where an image registry is reachable (the default), else the
# offline base of docker/airflow-base.Dockerfile (same layout, built from Debian packages and the
# machine's Python 3.12): `make images` chooses (BASE_IMAGES=registry|debian).
# An extra CA certificate for pip (a TLS-intercepting proxy) comes in as the build secret `pip_ca`
# (`--secret id=pip_ca,src=ca.pem`, as `make images` passes PIP_CA): used for this build only, never
# stored in a layer. Without it pip uses the image's own CA bundle.
ARG AIRFLOW_BASE=apache/airflow:3.3.1-python3.12
FROM ${AIRFLOW_BASE}

COPY --chown=airflow:root requirements.txt /opt/redshift-ingest/requirements.txt
COPY --chown=airflow:root constraints/airflow-3.3.1-python-3.12.txt /opt/redshift-ingest/constraints.txt

# requirements.txt names the constraints by URL for MWAA; here the repository's copy is used.
RUN --mount=type=secret,id=pip_ca,mode=0444 \
    set -e; \
    grep -v '^--constraint' /opt/redshift-ingest/requirements.txt > /tmp/requirements.txt; \
    if [ -s /run/secrets/pip_ca ]; then \
      { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat /run/secrets/pip_ca; } > /tmp/pip-ca.pem; \
      export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    pip install --no-cache-dir --disable-pip-version-check \
      --constraint /opt/redshift-ingest/constraints.txt \
      "apache-airflow==3.3.1" -r /tmp/requirements.txt; \
    rm -f /tmp/requirements.txt /tmp/pip-ca.pem

# dags/, include/ (as dags/include) and plugins/ are mounted by docker-compose.yaml, as MWAA lays
# them out; nothing of the project is baked into the image.
ENV PYTHONPATH=/opt/airflow/plugins
