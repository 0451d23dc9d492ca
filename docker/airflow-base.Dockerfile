# The offline stand-in of the official apache/airflow base image, for machines without an image
# registry: the Debian base of docker/debian-base.sh (bookworm + Python 3.12 at /opt/python3.12)
# laid out like the official image (user airflow, uid 50000, group 0; AIRFLOW_HOME=/opt/airflow;
# an entrypoint that runs `airflow <command>`), so that docker/airflow.Dockerfile and
# docker-compose.yaml work unchanged on either base. Airflow itself is installed by airflow.Dockerfile.
ARG DEBIAN_BASE=localhost/redshift-ingest-debian:bookworm-py3.12
FROM ${DEBIAN_BASE}

ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    VIRTUAL_ENV=/home/airflow/.venv \
    PATH=/home/airflow/.venv/bin:/opt/python3.12/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8

RUN useradd --uid 50000 --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
 && mkdir -p /opt/airflow/dags /opt/airflow/logs /opt/airflow/plugins /opt/airflow/config \
 && chown -R airflow:0 /opt/airflow && chmod -R g+rwX /opt/airflow \
 && su airflow -c '/opt/python3.12/bin/python3.12 -m venv /home/airflow/.venv' \
 && chmod -R g+rwX /home/airflow

COPY --chmod=0755 docker/airflow-entrypoint.sh /entrypoint
USER airflow
WORKDIR /opt/airflow
ENTRYPOINT ["/entrypoint"]
CMD ["--help"]
