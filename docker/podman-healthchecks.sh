#!/usr/bin/env bash
# Runs the health checks of one compose project's podman containers where systemd is not PID 1.
#
#   docker/podman-healthchecks.sh PROJECT     (started and stopped by docker/stack.sh up / down)
#
# Podman schedules `podman healthcheck run` with systemd timers; without systemd nothing runs them,
# every container stays "starting" and `depends_on: condition: service_healthy` waits forever. This
# loop runs each running container's check at its own interval (Config.Healthcheck.Interval), one
# check per container at a time.
set -uo pipefail
PROJECT=${1:?usage: podman-healthchecks.sh PROJECT}
declare -A next_run running

while true; do
	now=$(date +%s)
	for id in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
		# Still checking from the last round?
		if [ -n "${running[$id]:-}" ] && kill -0 "${running[$id]}" 2>/dev/null; then continue; fi
		[ "$now" -ge "${next_run[$id]:-0}" ] || continue
		interval=$(podman inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval.Seconds}}{{end}}' "$id" 2>/dev/null)
		if [ -z "$interval" ]; then
			next_run[$id]=$((now + 3600)) # no health check
			continue
		fi
		interval=${interval%%.*} # seconds, as a float
		[ "${interval:-0}" -gt 0 ] 2>/dev/null || interval=30
		podman healthcheck run "$id" >/dev/null 2>&1 &
		running[$id]=$!
		next_run[$id]=$((now + interval))
	done
	sleep 2
done
