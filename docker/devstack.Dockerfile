# The local stand-ins of docker-compose.yaml: the Redshift stand-in (devstack.redshift_local) and
# the Slack webhook receiver (devstack.slack_receiver). Build context: the repository root.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY constraints/airflow-3.3.1-python-3.12.txt /tmp/constraints.txt
# The stand-in's dependencies, at the versions the tests and MWAA use (sqlglot and zstandard are
# pinned in requirements-dev.txt at these same versions).
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt \
      boto3 psycopg2-binary sqlglot zstandard \
 && rm /tmp/constraints.txt \
 && useradd --system --uid 10001 --no-create-home devstack

WORKDIR /app
COPY devstack/ /app/devstack/
USER devstack
EXPOSE 5439 8090
# The command (which stand-in) is chosen per service in docker-compose.yaml.
CMD ["python", "-m", "devstack.redshift_local", "--host", "0.0.0.0", "--port", "5439"]
