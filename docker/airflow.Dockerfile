# Airflow for the local compose stack: the MWAA versions (Airflow 3.3.1, Python 3.12) plus our
# requirements.txt, installed under the same constraints as MWAA (the local copy of the file).
# Build context: the repository root (see docker-compose.yaml).
FROM apache/airflow:3.3.1-python3.12

COPY --chown=airflow:root requirements.txt /opt/redshift-ingest/requirements.txt
COPY --chown=airflow:root constraints/airflow-3.3.1-python-3.12.txt /opt/redshift-ingest/constraints.txt

# requirements.txt names the constraints by URL for MWAA; here the repository's copy is used.
RUN grep -v '^--constraint' /opt/redshift-ingest/requirements.txt > /tmp/requirements.txt \
 && pip install --no-cache-dir \
      --constraint /opt/redshift-ingest/constraints.txt \
      "apache-airflow==3.3.1" -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# dags/, include/ (as dags/include) and plugins/ are mounted by docker-compose.yaml, as MWAA lays
# them out; nothing of the project is baked into the image.
ENV PYTHONPATH=/opt/airflow/plugins
