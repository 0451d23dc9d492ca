# PostgreSQL for the compose stack where no image registry is reachable (else postgres:17 is used):
# Debian bookworm's PostgreSQL 15 on the offline base, with the few parts of the official image's
# interface that docker-compose.yaml uses (POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on first
# start, data in /var/lib/postgresql/data, pg_isready).
ARG DEBIAN_BASE=localhost/redshift-ingest-debian:bookworm-py3.12
FROM ${DEBIAN_BASE}

RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY --chmod=0755 docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
