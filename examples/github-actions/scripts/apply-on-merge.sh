#!/usr/bin/env bash
# On a push to main (a merged pull request): plan again against the live team
# (the plan is saved to $RESEND_IAC_OUT/plan.json and shown redacted in $RESEND_IAC_OUT/apply.md),
# then apply exactly that saved plan. The safety thresholds of the declared policy stay on
# (no --force): a plan deleting or updating too large a share of the team is refused.
# apply --plan also refuses when the live team changed between plan and apply.
#
# Exit status: 0 applied (or nothing to do); 1 otherwise (the files do not load, the plan,
# the safety check or the apply failed; the log and the summary say which).
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

summary="$OUT/apply.md"
rm -f "$summary" "$OUT/plan.json"

check_config_paths
require_key

# The saved plan holds the real keys (emails): it stays in the runner, it is no artifact.
rc=0
"$RESEND_IAC" plan "${CONFIG[@]}" --out "$OUT/plan.json" --detailed-exitcode --format markdown \
  "${REDACT[@]}" > "$OUT/plan.md" 2> "$OUT/plan.log" || rc=$?
mask_log < "$OUT/plan.log" | to_log >&2
case "$rc" in
  0)
    log "no changes: the live team matches the declared state"
    cp "$OUT/plan.md" "$summary"
    exit 0
    ;;
  2) ;;
  *)
    log "plan failed (exit status $rc)"
    { echo ":x: **resend-iac plan failed** (exit status $rc):"; echo; fenced "$OUT/plan.log"; footer "Tried to plan"; } > "$summary"
    exit 1
    ;;
esac
to_log < "$OUT/plan.md"

rc=0
"$RESEND_IAC" apply --plan "$OUT/plan.json" --auto-approve > "$OUT/apply.log" 2>&1 || rc=$?
mask_log < "$OUT/apply.log" | to_log
{
  cat "$OUT/plan.md"
  echo
  if [[ $rc == 0 ]]; then
    echo ":white_check_mark: **Applied:** $(tail -n 1 "$OUT/apply.log")"
    footer "Applied"
  else
    # apply's own messages, without the plan it prints again
    grep -iE '^(error|warning|note|done|interrupted)' "$OUT/apply.log" > "$OUT/apply-errors.log" \
      || cp "$OUT/apply.log" "$OUT/apply-errors.log"
    echo ":x: **Apply failed** (exit status $rc); nothing after the failure was applied:"
    echo
    fenced "$OUT/apply-errors.log"
    footer "Tried to apply"
  fi
} > "$summary"
[[ $rc == 0 ]] || exit 1
