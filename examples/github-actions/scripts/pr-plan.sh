#!/usr/bin/env bash
# On a pull request: validate the declared files, plan them against the live team
# (Markdown, redacted) and write the body of the sticky PR comment to $RESEND_IAC_OUT/comment.md.
# The body starts with the hidden marker <!-- resend-iac-plan --> so the workflow finds the
# comment again and updates it instead of adding one per push.
#
# Exit status: 0 a plan was made (with or without changes); 1 the files do not validate or
# the plan failed (the body says why, so the comment is posted either way).
# Step output: changes=true|false.
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

body="$OUT/comment.md"
rm -f "$body"

check_config_paths || { printf '%s\n## resend-iac\n\n:x: **The declared path is not a real directory** (a symlink, or missing): nothing was read.\n' "$PLAN_MARKER" > "$body"; exit 1; }
validate_or_explain "$body" "$PLAN_MARKER" || exit 1
require_key || { printf '%s\n## resend-iac\n\n:x: **No API key**: RESEND_API_KEY is not set for this run (pull requests from forks get no secrets).\n' "$PLAN_MARKER" > "$body"; exit 1; }

rc=0
"$RESEND_IAC" plan "${CONFIG[@]}" --format markdown "${REDACT[@]}" --detailed-exitcode \
  > "$OUT/plan.md" 2> "$OUT/plan.log" || rc=$?
mask_log < "$OUT/plan.log" | to_log >&2

case "$rc" in
  0 | 2)
    set_output changes "$([[ $rc == 2 ]] && echo true || echo false)"
    {
      echo "$PLAN_MARKER"
      cat "$OUT/plan.md"
      # plan's notes for the reviewer, e.g. that apply will refuse the plan (safety thresholds)
      if grep -E '^Note: ' "$OUT/plan.log" > "$OUT/notes.log"; then
        echo
        echo "> [!WARNING]"
        sed -E 's/^Note: //' "$OUT/notes.log" > "$OUT/notes.txt"
        fenced "$OUT/notes.txt" "> "
      fi
      footer "Planned"
    } > "$body"
    log "plan written to $body"
    exit 0
    ;;
  *)
    {
      echo "$PLAN_MARKER"
      echo "## resend-iac plan"
      echo
      echo ":x: **resend-iac plan failed** (exit status $rc):"
      echo
      fenced "$OUT/plan.log"
      footer "Tried to plan"
    } > "$body"
    exit 1
    ;;
esac
