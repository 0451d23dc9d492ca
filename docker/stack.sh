#!/usr/bin/env bash
# The compose stack's commands (`make tools | images | up | down | compose-config` call this).
#
#   docker/stack.sh tools    as root: a container engine and a compose tool from Debian's packages
#                            (podman + docker-compose, configured as these machines need), unless a
#                            Docker engine already runs
#   docker/stack.sh images   build the images (see BASE_IMAGES below)
#   docker/stack.sh up       images, then start the stack and wait until every service is healthy
#   docker/stack.sh down     stop and remove the containers; the named volumes stay
#   docker/stack.sh compose ARGS...   any docker-compose command on the stack (ps, logs, exec, ...)
#
# Settings (environment):
#   ENGINE       docker | podman (default: docker when a Docker engine answers, else podman)
#   BASE_IMAGES  registry: the official apache/airflow, python and postgres images (needs Docker Hub);
#                debian: an offline base from Debian packages + this machine's Python 3.12
#                (docker/debian-base.sh, root); auto (default): registry when Docker Hub answers.
#   PIP_CA       a CA bundle for pip inside the builds (a TLS-intercepting proxy); default the one pip
#                uses here ($PIP_CERT, else $SSL_CERT_FILE) when set. Passed as a build secret only.
#   PYTHON       the Python 3.12 copied into the offline base (the Makefile passes its own).
#   UP_TIMEOUT   seconds `up` waits for the services to be healthy (default 900); BUILD_TIMEOUT
#                bounds each image build (default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."

export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-redshift-ingest}
ENV_FILE=docker/.images.env
PODMAN_SOCKET=${PODMAN_SOCKET:-/run/podman/podman.sock}
STATE_DIR=${STATE_DIR:-/run/redshift-ingest-compose}
AIRFLOW_IMAGE=localhost/redshift-ingest-airflow:3.3.1-python3.12
DEVSTACK_IMAGE=localhost/redshift-ingest-devstack:local
DEBIAN_IMAGE=localhost/redshift-ingest-debian:bookworm-py3.12
OFFLINE_AIRFLOW_BASE=localhost/redshift-ingest-airflow-base:3.3.1-python3.12
OFFLINE_POSTGRES=localhost/redshift-ingest-postgres:15
REGISTRY_AIRFLOW_BASE=docker.io/apache/airflow:3.3.1-python3.12
REGISTRY_PYTHON_BASE=docker.io/library/python:3.12-slim
REGISTRY_POSTGRES=docker.io/library/postgres:17
# Long-running services (airflow-init runs once and exits).
SERVICES=(postgres warehouse-db s3 redshift-local mail-receiver slack-receiver
	airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer)

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

engine() {
	if [ -n "${ENGINE:-}" ]; then
		echo "$ENGINE"
	elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		echo docker
	elif command -v podman >/dev/null 2>&1; then
		echo podman
	else
		echo none
	fi
}

# The compose command for the engine: Docker's own (v2 plugin, else docker-compose), or
# docker-compose on podman's Docker-compatible socket.
compose_cmd() {
	local eng
	eng=$(engine)
	case "$eng" in
		docker)
			if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi ;;
		podman)
			command -v docker-compose >/dev/null || die "docker-compose is missing: make tools (as root)"
			echo "env DOCKER_HOST=unix://$PODMAN_SOCKET docker-compose" ;;
		*)
			# No engine: enough for `config`, which only reads the file.
			command -v docker-compose >/dev/null || die "no container engine: install Docker, or run \`make tools\` as root (podman)"
			echo docker-compose ;;
	esac
}

compose() {
	local args=(-f docker-compose.yaml)
	[ -f "$ENV_FILE" ] && args+=(--env-file "$ENV_FILE")
	# shellcheck disable=SC2046
	$(compose_cmd) "${args[@]}" "$@"
}

# --- tools ------------------------------------------------------------------------------------------
tools() {
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then
			log "Docker engine and compose available"; return
		fi
		need=(docker-compose)
	else
		# iptables: netavark sets up the containers' networks with it ("netavark: No such file or
		# directory" on every build step without it; a Recommends, so --no-install-recommends drops it).
		need=(podman runc netavark aardvark-dns iptables debootstrap docker-compose)
	fi
	missing=()
	for pkg in "${need[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || die "run as root, or: sudo apt-get install -y ${missing[*]}"
		log "apt-get install ${missing[*]}"
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	fi
	if [[ " ${need[*]} " == *" podman "* ]]; then configure_podman; fi
	log "tools ready: engine $(engine), compose: $(compose_cmd)"
}

# Podman as these machines need it (measured): runc (crun fails on hybrid cgroups), the cgroupfs
# manager (no systemd), no default ulimits (refused here), logs and events in files (no journald).
configure_podman() {
	local conf=/etc/containers/containers.conf.d/50-redshift-ingest.conf
	[ -w /etc ] || { log "not root: podman left as configured"; return; }
	mkdir -p "$(dirname "$conf")"
	cat >"$conf" <<-'EOF'
		# Written by redshift-ingest `make tools` (docker/stack.sh): podman without systemd.
		[containers]
		default_ulimits = []
		log_driver = "k8s-file"
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
	EOF
	log "podman configured: $conf"
}

# --- podman: the Docker-compatible socket, and health checks without systemd --------------------------
podman_service() {
	mkdir -p "$STATE_DIR" "$(dirname "$PODMAN_SOCKET")"
	if curl -fsS --max-time 5 --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; then
		return
	fi
	log "starting podman's API service on $PODMAN_SOCKET"
	setsid nohup podman system service --time=0 "unix://$PODMAN_SOCKET" \
		>"$STATE_DIR/podman-service.log" 2>&1 </dev/null &
	echo $! >"$STATE_DIR/podman-service.pid"
	for _ in $(seq 60); do
		curl -fsS --max-time 5 --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1 && return
		sleep 1
	done
	die "podman system service did not answer on $PODMAN_SOCKET (log: $STATE_DIR/podman-service.log)"
}

# Podman runs health checks from systemd timers; where systemd is not PID 1 nothing runs them and
# every container stays "starting". docker/podman-healthchecks.sh runs them instead.
podman_health_runner() {
	[ -d /run/systemd/system ] && return
	local pidfile="$STATE_DIR/healthchecks.pid"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return; fi
	log "no systemd: health checks run by docker/podman-healthchecks.sh"
	setsid nohup docker/podman-healthchecks.sh "$COMPOSE_PROJECT_NAME" \
		>"$STATE_DIR/healthchecks.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

# With the cgroupfs manager on cgroup v1, every container sits under one parent cgroup
# (libpod_parent) whose CPU weight is that of ONE host process: on a busy host (other builds and tests)
# the whole stack gets a sliver of the CPU and Airflow takes minutes to start. Give the parent the
# weight of the stack's services. Cgroup v2 or a non-root podman: left as it is.
podman_cpu_weight() {
	local shares=/sys/fs/cgroup/cpu/libpod_parent/cpu.shares weight=$((1024 * ${#SERVICES[@]}))
	(
		for _ in $(seq 300); do
			if [ -w "$shares" ]; then
				echo "$weight" >"$shares" 2>/dev/null || true
				exit 0
			fi
			sleep 1
		done
	) </dev/null >/dev/null 2>&1 &
}

stop_pidfile() {
	local pidfile=$1
	if [ -f "$pidfile" ]; then
		kill "$(cat "$pidfile")" 2>/dev/null || true
		rm -f "$pidfile"
	fi
}

# --- images -----------------------------------------------------------------------------------------
registry_reachable() {
	local eng=$1
	"$eng" image inspect "$REGISTRY_AIRFLOW_BASE" >/dev/null 2>&1 && return 0
	timeout 120 "$eng" pull -q "$REGISTRY_PYTHON_BASE" >/dev/null 2>&1
}

images() {
	local eng base ca secret
	eng=$(engine)
	[ "$eng" != none ] || die "no container engine: install Docker, or run \`make tools\` as root (podman)"
	base=${BASE_IMAGES:-auto}
	if [ "$base" = auto ]; then
		if registry_reachable "$eng"; then base=registry; else base=debian; fi
		log "BASE_IMAGES=auto: $base"
	fi
	ca=${PIP_CA-${PIP_CERT:-${SSL_CERT_FILE:-}}}
	secret=$(mktemp)
	# shellcheck disable=SC2064
	trap "rm -f '$secret'" EXIT
	if [ -n "$ca" ]; then
		[ -r "$ca" ] || die "PIP_CA=$ca is not a readable file"
		cat "$ca" >"$secret"
		log "pip trusts the CA bundle $ca during the builds (build secret pip_ca)"
	fi
	local airflow_base python_base postgres_image pids=()
	case "$base" in
		registry)
			airflow_base=$REGISTRY_AIRFLOW_BASE python_base=$REGISTRY_PYTHON_BASE postgres_image=$REGISTRY_POSTGRES ;;
		debian)
			ENGINE=$eng PYTHON=${PYTHON:-} docker/debian-base.sh "$DEBIAN_IMAGE"
			airflow_base=$OFFLINE_AIRFLOW_BASE python_base=$DEBIAN_IMAGE postgres_image=$OFFLINE_POSTGRES ;;
		*) die "BASE_IMAGES must be registry, debian or auto (got $base)" ;;
	esac
	# Two chains side by side (the pip installs mostly wait on downloads): Airflow, and the rest.
	{
		if [ "$base" = debian ]; then
			build "$eng" "$secret" docker/airflow-base.Dockerfile "$OFFLINE_AIRFLOW_BASE" DEBIAN_BASE="$DEBIAN_IMAGE"
		fi
		build "$eng" "$secret" docker/airflow.Dockerfile "$AIRFLOW_IMAGE" AIRFLOW_BASE="$airflow_base"
	} &
	pids+=($!)
	{
		if [ "$base" = debian ]; then
			build "$eng" "$secret" docker/postgres.Dockerfile "$OFFLINE_POSTGRES" DEBIAN_BASE="$DEBIAN_IMAGE"
		fi
		build "$eng" "$secret" docker/devstack.Dockerfile "$DEVSTACK_IMAGE" PYTHON_BASE="$python_base"
	} &
	pids+=($!)
	local failed=0
	for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
	[ "$failed" = 0 ] || die "an image build failed (its error is above)"
	cat >"$ENV_FILE" <<-EOF
		# Written by \`make images\` (docker/stack.sh): the bases the images were built from.
		BASE_IMAGES=$base
		AIRFLOW_BASE=$airflow_base
		PYTHON_BASE=$python_base
		POSTGRES_IMAGE=$postgres_image
	EOF
	log "images built ($base bases): $AIRFLOW_IMAGE, $DEVSTACK_IMAGE, postgres $postgres_image"
}

# build ENGINE SECRET DOCKERFILE TAG [ARG=VALUE...]
build() {
	local eng=$1 secret=$2 dockerfile=$3 tag=$4
	shift 4
	local args=()
	for arg in "$@"; do args+=(--build-arg "$arg"); done
	log "building $tag ($dockerfile)"
	local started=$SECONDS
	# A bound on each build: a stalled download fails the build instead of hanging CI.
	if [ "$eng" = docker ]; then
		DOCKER_BUILDKIT=1 timeout "${BUILD_TIMEOUT:-1800}" docker build -q -f "$dockerfile" -t "$tag" --secret "id=pip_ca,src=$secret" "${args[@]}" . >/dev/null
	else
		timeout "${BUILD_TIMEOUT:-1800}" podman build -q --layers -f "$dockerfile" -t "$tag" --secret "id=pip_ca,src=$secret" "${args[@]}" . >/dev/null
	fi
	log "built $tag in $((SECONDS - started)) s"
}

# --- up / down --------------------------------------------------------------------------------------
health_table() {
	local eng ids
	eng=$(engine)
	ids=$("$eng" ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
	[ -n "$ids" ] || return 0
	# shellcheck disable=SC2086
	"$eng" inspect --format \
		'{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \
		$ids
}

wait_healthy() {
	local timeout=${UP_TIMEOUT:-900} started=$SECONDS table healthy
	while true; do
		table=$(health_table)
		healthy=0
		for service in "${SERVICES[@]}"; do
			grep -q "^$service running healthy$" <<<"$table" && healthy=$((healthy + 1))
		done
		if [ "$healthy" = "${#SERVICES[@]}" ]; then
			log "$healthy services healthy after $((SECONDS - started)) s"
			return 0
		fi
		if [ $((SECONDS - started)) -gt "$timeout" ]; then
			log "not healthy after $timeout s:"
			printf '%s\n' "$table" >&2
			return 1
		fi
		sleep 5
	done
}

up() {
	images
	if [ "$(engine)" = podman ]; then
		podman_service
		podman_health_runner
		podman_cpu_weight
	fi
	log "starting the stack ($(compose_cmd))"
	compose up -d --no-build
	wait_healthy || { compose ps >&2 || true; die "the stack is not healthy (docker/stack.sh compose logs SERVICE)"; }
	cat >&2 <<-'EOF'
		[stack] up: UI http://localhost:8080 (admin / admin), Redshift stand-in localhost:5439 (postgres / local-only, db dev),
		[stack]     S3 http://localhost:5000, mail http://localhost:8025/api/v1/messages, Slack http://localhost:8091/api/v1/messages
	EOF
}

down() {
	local eng
	eng=$(engine)
	if [ "$eng" = podman ] && ! curl -fsS --max-time 5 --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; then
		podman_service
	fi
	compose down "$@"
	if [ "$eng" = podman ]; then
		stop_pidfile "$STATE_DIR/healthchecks.pid"
		stop_pidfile "$STATE_DIR/podman-service.pid"
	fi
}

# Parsed whole before it runs (`main ...; exit` on one line): editing this file while a long `up` runs
# cannot make bash read on into changed text.
main() {
	case "${1:-}" in
		tools) tools ;;
		images) images ;;
		up) up ;;
		down) shift; down "$@" ;;
		health) health_table ;;
		compose) shift; [ "$(engine)" != podman ] || podman_service; compose "$@" ;;
		config) compose config -q ;;
		*) sed -n '2,22p' "$0"; exit 2 ;;
	esac
}
main "$@"; exit $?
