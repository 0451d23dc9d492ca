#!/usr/bin/env bash
# Entrypoint of the offline Airflow base (docker/airflow-base.Dockerfile), as the official image's:
# `<image> scheduler` runs `airflow scheduler`; bash, python, airflow or a path run as given.
set -e
case "${1:-}" in
	'' ) exec airflow --help ;;
	bash | sh | python | python3 | airflow | /* ) exec "$@" ;;
	* ) exec airflow "$@" ;;
esac
