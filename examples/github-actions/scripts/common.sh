# shellcheck shell=bash
# Shared by the resend-iac CI scripts (sourced, not run). Talks to resend-iac only;
# everything that talks to GitHub stays in the workflow (resend-iac.yml).
#
# Settings (environment):
#   RESEND_API_KEY      the team's API key: from the CI's secret store, never from a file
#   RESEND_API_URL      optional: another API base URL (tests point it at the emulator)
#   RESEND_IAC_CONFIG   the declared files/directories, separated by spaces (default: resend)
#   RESEND_IAC_REDACT   1 (default): mask emails and names in everything written; 0: don't
#   RESEND_IAC_OUT      where bodies and plan files are written (default: .resend-iac-ci)
#   RESEND_IAC          the resend-iac command (default: resend-iac on PATH)

set -euo pipefail
set +x  # never trace: the environment holds the API key

RESEND_IAC="${RESEND_IAC:-resend-iac}"
read -r -a CONFIG <<< "${RESEND_IAC_CONFIG:-resend}"
OUT="${RESEND_IAC_OUT:-.resend-iac-ci}"
mkdir -p "$OUT"
REDACT=()
if [[ "${RESEND_IAC_REDACT:-1}" != "0" ]]; then REDACT=(--redact); fi

# shellcheck disable=SC2034  # used by the scripts that source this file
PLAN_MARKER='<!-- resend-iac-plan -->'
# shellcheck disable=SC2034
DRIFT_MARKER='<!-- resend-iac-drift -->'

log() { printf 'resend-iac-ci: %s\n' "$*" >&2; }

require_key() {
  if [[ -z "${RESEND_API_KEY:-}" ]]; then
    log "RESEND_API_KEY is not set. Add it to the repository's secrets (Settings > Secrets and variables > Actions)."
    log "Pull requests from forks get no secrets: plan them from a branch of this repository."
    return 1
  fi
}

# Emails in free text (validation messages, errors) masked like the plan masks them.
mask_emails() {
  if [[ ${#REDACT[@]} -gt 0 ]]; then
    sed -E 's/[[:alnum:]._%+-]+@([[:alnum:]-]+\.)+[[:alnum:]-]+/<email redacted>/g'
  else
    cat
  fi
}

# apply's own output for the CI log: apply prints the plan unredacted, so when redacting
# the field lines (names, property values) are left out and the emails masked.
mask_log() {
  if [[ ${#REDACT[@]} -gt 0 ]]; then
    { grep -v '^      ' || true; } | mask_emails
  else
    cat
  fi
}

# A fenced block of (at most the last 200 lines of) a command's output.
fenced() {
  printf '```text\n'
  tail -n 200 "$1" | mask_log
  printf '```\n'
}

# Key=value for later steps (GitHub Actions), ignored elsewhere.
set_output() {
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"; fi
}

footer() {
  local rev="${GITHUB_SHA:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  local run=""
  if [[ -n "${GITHUB_RUN_ID:-}" ]]; then
    run=" · [workflow run](${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY}/actions/runs/${GITHUB_RUN_ID})"
  fi
  # shellcheck disable=SC2016  # the backticks are Markdown
  printf '\n<sub>%s at `%s` by resend-iac%s</sub>\n' "$1" "${rev:0:12}" "$run"
}

# validate the declared files; on failure write a body explaining it to $1 and fail.
validate_or_explain() {
  local body="$1" marker="$2"
  if "$RESEND_IAC" validate "${CONFIG[@]}" > "$OUT/validate.log" 2>&1; then
    return 0
  fi
  log "the declared files do not validate:"
  cat "$OUT/validate.log" >&2
  # On GitHub, also annotate the pull request's diff (the runner reads ::error lines on stdout);
  # the PR's files are checked out in pr/ (resend-iac.yml): paths relative to its root.
  if [[ -n "${GITHUB_ACTIONS:-}" ]]; then
    { "$RESEND_IAC" validate --format github "${CONFIG[@]}" 2>/dev/null || true; } \
      | sed -E 's#^(::error file=)pr/#\1#' | mask_emails
  fi
  {
    echo "$marker"
    echo "## resend-iac"
    echo
    echo ":x: **The declared files do not validate.** Fix these and push again:"
    echo
    fenced "$OUT/validate.log"
    footer "Validated"
  } > "$body"
  return 1
}
