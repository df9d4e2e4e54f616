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

# Text from the pull request's files reaches the log and the comment only through these:
# - to_log: each line of a command's output prefixed with "| ", so no line of the log can
#   start with "::" (a workflow command; the runner trims leading white space, not "|");
# - fenced: a code block whose fence is longer than any run of backticks in what it wraps,
#   so nothing in it can close the block and become Markdown (headings, images, mentions).
to_log() {
  sed -e 's/^/| /'
}

# A fence for the text on stdin: max(3, longest run of backticks + 1) backticks.
fence_for() {
  local longest
  longest=$({ grep -o '`\+' || true; } | awk '{ if (length($0) > n) n = length($0) } END { print n + 0 }')
  if ((longest < 3)); then longest=2; fi
  printf '%*s' "$((longest + 1))" '' | tr ' ' '`'
}

# A fenced block of (at most the last 200 lines of) a command's output ($2: a prefix for
# every line, e.g. "> " inside a blockquote).
fenced() {
  local text fence
  text=$(tail -n 200 "$1" | mask_log)
  fence=$(fence_for <<< "$text")
  printf '%s%stext\n' "${2:-}" "$fence"
  if [[ -n "$text" ]]; then printf '%s\n' "$text" | sed -e "s/^/${2:-}/"; fi
  printf '%s%s\n' "${2:-}" "$fence"
}

# Every declared path must be a real file or directory inside the checkout: in the plan job
# pr/resend is written by the pull request, which could make it a symlink to anywhere.
# (resend-iac refuses such a path too; this says so before anything runs.)
check_config_paths() {
  local path
  for path in "${CONFIG[@]}"; do
    if [[ -L "$path" || ! -e "$path" ]]; then
      log "$path: not a real file or directory (a symlink, or missing); nothing was read"
      return 1
    fi
  done
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
  to_log < "$OUT/validate.log" >&2
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
