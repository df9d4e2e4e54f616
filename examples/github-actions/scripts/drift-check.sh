#!/usr/bin/env bash
# Nightly: plan the declared files (main) against the live team. Changes mean the team has
# drifted: someone changed it outside resend-iac (dashboard, API, another tool).
# Then writes the drift issue's body to $RESEND_IAC_OUT/drift.md, starting with the hidden
# marker <!-- resend-iac-drift --> so the workflow finds the open issue and updates it.
#
# Exit status (plan --detailed-exitcode): 0 no drift (no body), 2 drift (body written),
# 1 error (the files do not load, or the plan failed: the log says why).
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

body="$OUT/drift.md"
rm -f "$body"

check_config_paths
require_key

rc=0
"$RESEND_IAC" plan "${CONFIG[@]}" --format markdown "${REDACT[@]}" --detailed-exitcode \
  > "$OUT/plan.md" 2> "$OUT/plan.log" || rc=$?
mask_log < "$OUT/plan.log" | to_log >&2
set_output drift "$([[ $rc == 2 ]] && echo true || echo false)"

case "$rc" in
  0)
    log "no drift: the live team matches the declared state"
    exit 0
    ;;
  2)
    {
      echo "$DRIFT_MARKER"
      echo "The live Resend team no longer matches the files on \`${GITHUB_REF_NAME:-main}\`:"
      echo "someone changed it outside resend-iac (the dashboard, the API, another tool)."
      echo "The next apply would undo what is listed below. To keep a change instead,"
      echo "declare it in the files; to undo it, re-run the apply job."
      echo
      cat "$OUT/plan.md"
      footer "Checked"
    } > "$body"
    log "drift found; issue body written to $body"
    exit 2
    ;;
  *)
    log "plan failed (exit status $rc)"
    exit 1
    ;;
esac
