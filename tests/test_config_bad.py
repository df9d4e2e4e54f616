"""The bad-input corpus (tests/bad/): every case is refused by `resend-iac validate` with
exit 1, pointing at the right file:line, in words that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from resend_iac import config
from resend_iac.cli import main

BAD = Path(__file__).parent / "bad"

# (case, where the error is: "file:line" relative to tests/bad, or a bare path; wording)
CASES = [
    (
        "yaml_syntax.yaml",
        "yaml_syntax.yaml:5",
        "YAML syntax error: while parsing a flow sequence (started at line 4",
    ),
    ("multiple_documents.yaml", "multiple_documents.yaml:2", "expected a single document"),
    ("yaml_not_utf8.yaml", "yaml_not_utf8.yaml:3", "not UTF-8 (byte 0xe9 on line 3); save it as UTF-8"),
    ("empty.yaml", "empty.yaml:1", "file is empty; a resend-iac file starts with `version: 1`"),
    ("empty_dir", "empty_dir", "no .yaml or .yml files in this directory"),
    ("not_a_mapping.yaml", "not_a_mapping.yaml:1", "the file must be a mapping with `version: 1` at the top"),
    ("missing_version.yaml", "missing_version.yaml:1", "missing required key 'version'"),
    ("wrong_version.yaml", "wrong_version.yaml:1", "'version' must be 1, not the number 2"),
    ("unsupported_tag.yaml", "unsupported_tag.yaml:3", "unsupported YAML tag"),
    (
        "duplicate_key.yaml",
        "duplicate_key.yaml:12",
        "duplicate key 'first_name' (first at line 11, column 5)",
    ),
    (
        "duplicate_segment_key.yaml",
        "duplicate_segment_key.yaml:5",
        "duplicate key 'beta-testers' (first at line 3",
    ),
    (
        "unknown_key_contact.yaml",
        "unknown_key_contact.yaml:11",
        "unknown key 'segmnts' in contact (did you mean 'segments'?)",
    ),
    (
        "unknown_top_key.yaml",
        "unknown_top_key.yaml:2",
        "unknown key 'contact' in the top level of the file (did you mean 'contacts'?)",
    ),
    (
        "policy_unknown_key.yaml",
        "policy_unknown_key.yaml:3",
        "unknown key 'prune_contact' in policy (did you mean 'prune_contacts'?)",
    ),
    (
        "contact_not_a_mapping.yaml",
        "contact_not_a_mapping.yaml:3",
        "not the string 'a@example.com' (write `- email: a@example.com`, or list plain addresses under `- emails:`)",
    ),
    (
        "contact_missing_email.yaml",
        "contact_missing_email.yaml:10",
        "contact is missing required key 'email'",
    ),
    (
        "wrong_type_unsubscribed.yaml",
        "wrong_type_unsubscribed.yaml:11",
        "'unsubscribed' must be true or false, not the string 'nope'",
    ),
    (
        "wrong_type_segments.yaml",
        "wrong_type_segments.yaml:11",
        "'segments' must be a list, not the string 'beta-testers'",
    ),
    (
        "yes_as_name.yaml",
        "yes_as_name.yaml:11",
        "YAML reads yes/no/on/off/true/false as booleans: quote the text",
    ),
    (
        "duplicate_email.yaml",
        "duplicate_email.yaml:12",
        "contact 'ADA@Example.com' is declared twice (first at",
    ),
    ("duplicate_email_shorthand.yaml", "duplicate_email_shorthand.yaml:13", "declared twice (first at"),
    (
        "duplicate_email_across_files",
        "duplicate_email_across_files/b.yaml:4",
        "duplicate_email_across_files/a.yaml:10:5 as 'ada@example.com'",
    ),
    (
        "duplicate_email_csv",
        "duplicate_email_csv/main.yaml:11",
        "first at " + str(BAD / "duplicate_email_csv/people.csv") + ":3",
    ),
    (
        "invalid_email.yaml",
        "invalid_email.yaml:10",
        "'ada.example.com' is not a valid email address (it needs exactly one @)",
    ),
    (
        "invalid_email_shorthand.yaml",
        "invalid_email_shorthand.yaml:12",
        "'grace@@example.com' is not a valid email address",
    ),
    (
        "undeclared_segment.yaml",
        "undeclared_segment.yaml:11",
        "segment 'beta-tester' is not declared; declare it under segments: or fix the name (did you mean 'beta-testers'?)",
    ),
    (
        "undeclared_topic.yaml",
        "undeclared_topic.yaml:11",
        "topic 'product-update' is not declared; declare it under topics:",
    ),
    (
        "undeclared_property.yaml",
        "undeclared_property.yaml:11",
        "property 'compnay' is not declared; declare it under properties: or fix the key (did you mean 'company'?)",
    ),
    (
        "property_value_not_number.yaml",
        "property_value_not_number.yaml:11",
        "property 'plan_tier' is a number, but the value is the string '3': write it without quotes",
    ),
    (
        "property_value_not_string.yaml",
        "property_value_not_string.yaml:11",
        "property 'company' is a string, but the value is the number 42: quote it",
    ),
    (
        "property_key_too_long.yaml",
        "property_key_too_long.yaml:3",
        "is 51 characters long; Resend allows at most 50",
    ),
    (
        "property_key_bad_chars.yaml",
        "property_key_bad_chars.yaml:3",
        "may only contain letters, digits and underscore (found '-'); rename it, e.g. 'plan_tier'",
    ),
    ("property_key_builtin.yaml", "property_key_builtin.yaml:3", "'first_name' is a built-in contact field"),
    (
        "fallback_type_mismatch.yaml",
        "fallback_type_mismatch.yaml:3",
        "fallback_value: property 'plan_tier' is a number",
    ),
    (
        "topic_name_too_long.yaml",
        "topic_name_too_long.yaml:3",
        "is 51 characters long; Resend allows at most 50",
    ),
    (
        "topic_description_too_long.yaml",
        "topic_description_too_long.yaml:5",
        "description of topic 'news' is 201 characters long; Resend allows at most 200",
    ),
    (
        "bad_enum_subscription.yaml",
        "bad_enum_subscription.yaml:11",
        "must be one of opt_in, opt_out, not the string 'opted_in' (did you mean 'opt_in'?)",
    ),
    (
        "bad_enum_membership.yaml",
        "bad_enum_membership.yaml:3",
        "'membership' must be one of authoritative, additive, not the string 'additiv'",
    ),
    (
        "bad_enum_property_type.yaml",
        "bad_enum_property_type.yaml:3",
        "'type' must be one of string, number, not the string 'boolean'",
    ),
    ("bad_enum_visibility.yaml", "bad_enum_visibility.yaml:3", "'visibility' must be one of public, private"),
    (
        "policy_out_of_range.yaml",
        "policy_out_of_range.yaml:4",
        "'max_delete_fraction' must be between 0 and 1, not 1.5",
    ),
    ("policy_conflict", "policy_conflict/b.yaml:3", "policy prune_contacts is true here but false at"),
    (
        "segment_declared_twice",
        "segment_declared_twice/b.yaml:4",
        "segment 'beta-testers' is already declared at",
    ),
    (
        "csv_missing",
        "csv_missing/main.yaml:10",
        "missing.csv' not found; `csv:` paths are relative to the YAML file",
    ),
    ("csv_is_directory", "csv_is_directory/main.yaml:10", "is a directory, not a file"),
    ("csv_not_utf8", "csv_not_utf8/people.csv:3", "not UTF-8 (byte 0xe9 on line 3)"),
    (
        "csv_utf16",
        "csv_utf16/people.csv:1",
        'file is UTF-16 (e.g. Excel\'s "Unicode Text"); save it as UTF-8',
    ),
    (
        "csv_semicolons",
        "csv_semicolons/people.csv:1",
        "the file looks semicolon-separated; save it comma-separated",
    ),
    ("csv_empty", "csv_empty/people.csv:1", "CSV file is empty: it needs a header row"),
    (
        "csv_missing_mapped_column",
        "csv_missing_mapped_column/main.yaml:11",
        "column 'First name' is not in the header of",
    ),
    (
        "csv_column_mapped_twice",
        "csv_column_mapped_twice/main.yaml:13",
        "columns 'Email' and 'Work Email' both map to 'email'; map each field once",
    ),
    (
        "csv_unknown_target",
        "csv_unknown_target/main.yaml:11",
        "maps to 'compnay', which is not email, first_name, last_name, unsubscribed or a declared property (did you mean 'company'?)",
    ),
    (
        "csv_unknown_header",
        "csv_unknown_header/people.csv:1",
        "column 'Company' is not a contact field or declared property (did you mean 'company'?)",
    ),
    (
        "csv_duplicate_header",
        "csv_duplicate_header/people.csv:1",
        "column 'email' appears twice in the header",
    ),
    ("csv_no_email_column", "csv_no_email_column/main.yaml:10", "maps to email; add it under columns:"),
    (
        "csv_bad_number",
        "csv_bad_number/people.csv:3",
        "value 'three' in column 'Tier' is not a number (property 'plan_tier' is a number)",
    ),
    (
        "csv_bad_email",
        "csv_bad_email/people.csv:3",
        "'grace hopper@example.com' is not a valid email address",
    ),
    (
        "csv_bad_unsubscribed",
        "csv_bad_unsubscribed/people.csv:3",
        "unsubscribed value 'maybe' in column 'unsubscribed' must be true/false, 1/0 or yes/no",
    ),
    ("csv_missing_email", "csv_missing_email/people.csv:3", "row has no email"),
    ("csv_extra_fields", "csv_extra_fields/people.csv:3", "row has 3 fields but the header has 2"),
    ("csv_undeclared_segment", "csv_undeclared_segment/main.yaml:11", "segment 'newsletter' is not declared"),
    # untrusted input (issue 12): confinement, bounded parsing, numbers, bounded excerpts
    (
        "csv_absolute_path",
        "csv_absolute_path/main.yaml:10",
        "csv: '/proc/self/environ' is not a relative path; name a file inside",
    ),
    (
        "csv_outside_root",
        "csv_outside_root/main.yaml:10",
        "leads outside " + str(BAD / "csv_outside_root") + " (the config root",
    ),
    ("csv_symlink_outside", "csv_symlink_outside/main.yaml:10", "csv: 'seeds/people.csv' leads outside"),
    ("yaml_symlink_outside", "yaml_symlink_outside/b.yaml", "this file is a symlink that leads outside"),
    (
        "csv_header_excerpt",
        "csv_header_excerpt/main.yaml:11",
        "its columns are: 'Email', 'RESEND_API_KEY=re_**** PATH=/usr/local/s'... (88 characters), 'col1', 'col2', 'col3', ... (32 columns)",
    ),
    (
        "csv_number_overflow",
        "csv_number_overflow/people.csv:3",
        "value '1e400' in column 'Tier' is not a number that Resend can store (finite",
    ),
    (
        "alias_bomb.yaml",
        "alias_bomb.yaml:9",
        'expand to more than 250,000 values (a "billion laughs" file?), so they were not expanded',
    ),
    ("alias_recursive.yaml", "alias_recursive.yaml:2", "nested more than 32 deep"),
    ("deep_nesting.yaml", "deep_nesting.yaml:2", "mappings and lists are nested more than 32 deep here"),
    (
        "number_inf.yaml",
        "number_inf.yaml:11",
        ".inf (infinity) is not allowed: Resend stores finite JSON numbers only",
    ),
    ("number_nan.yaml", "number_nan.yaml:11", ".nan (not a number) is not allowed"),
    (
        "number_overflow.yaml",
        "number_overflow.yaml:11",
        "the number 1.0e+400 is out of range: Resend stores JSON numbers (doubles)",
    ),
    (
        "number_exponent_no_dot.yaml",
        "number_exponent_no_dot.yaml:11",
        "YAML 1.1 reads a number with an exponent but no dot (1e400) as text; write it unquoted and with a dot, e.g. 1.0e+400",
    ),
    ("number_huge_int.yaml", "number_huge_int.yaml:11", "the whole number 12345678901234567890 is too large"),
    (
        "number_too_many_digits.yaml",
        "number_too_many_digits.yaml:11",
        "the number 99999999999999999999...99999999 is out of range",
    ),
    ("policy_nan.yaml", "policy_nan.yaml:4", ".nan (not a number) is not allowed"),
    ("fallback_inf.yaml", "fallback_inf.yaml:3", "-.inf (infinity) is not allowed"),
    ("csv_nul_path.yaml", "csv_nul_path.yaml:3", "csv: the path holds a control character (e.g. a NUL byte)"),
    ("csv_home_path", "csv_home_path/main.yaml:10", "csv: '~/people.csv' is not a relative path"),
    ("csv_symlink_dir", "csv_symlink_dir/main.yaml:10", "csv: 'seeds/people.csv' leads outside"),
    (
        "csv_big_int",
        "csv_big_int/people.csv:3",
        "is not a number that Resend can store exactly (whole numbers up to 9007199254740991",
    ),
    (
        "csv_semicolon_long_header",
        "csv_semicolon_long_header/people.csv:1",
        "the header 'email;first_name;last_name;company;c;c;c'... (435 characters) is one column",
    ),
    ("alias_bomb_mapping.yaml", "alias_bomb_mapping.yaml:10", "expand to more than 250,000 values"),
    (
        "unsupported_tag_python.yaml",
        "unsupported_tag_python.yaml:11",
        "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os'...",
    ),
    (
        "duplicate_key_long.yaml",
        "duplicate_key_long.yaml:4",
        "duplicate key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'... (900 characters) (first at line 3",
    ),
    ("policy_inf.yaml", "policy_inf.yaml:3", ".inf (infinity) is not allowed"),
    (
        "number_negative_overflow.yaml",
        "number_negative_overflow.yaml:11",
        "the number -1.7e+309 is out of range",
    ),
    ("yaml_control_char.yaml", "yaml_control_char.yaml:2", "character #x0007 is not allowed in YAML"),
    (
        "property_value_long_string.yaml",
        "property_value_long_string.yaml:11",
        "'... (3,000 characters): write it without quotes",
    ),
    # the runner boundary (issue 18): the config root, quoted text, invisible characters
    (
        "root_symlink",
        "root_symlink",
        "this path is a symlink: a config root must be a real file or directory",
    ),
    ("root_symlink_file.yaml", "root_symlink_file.yaml", "this path is a symlink"),
    (
        "contact_string_multiline.yaml",
        "contact_string_multiline.yaml:5",
        "not the string 'a@example.com\\n```\\n# PWNED\\n![x](https://evil.example/x.png)\\n@'... (83 characters) "
        "(write `- email: ADDRESS`, or list plain addresses under `- emails:`)",
    ),
    (
        "email_zero_width.yaml",
        "email_zero_width.yaml:5",
        "'grace\\u200b@example.com' holds U+200B (ZERO WIDTH SPACE) at character 6, which a reviewer cannot see",
    ),
    (
        "email_bidi_override.yaml",
        "email_bidi_override.yaml:4",
        "holds U+202E (RIGHT-TO-LEFT OVERRIDE) at character 1",
    ),
    (
        "email_soft_hyphen.yaml",
        "email_soft_hyphen.yaml:4",
        "'gra\\xadce@example.com' holds U+00AD (SOFT HYPHEN)",
    ),
    ("email_bom.yaml", "email_bom.yaml:4", "holds U+FEFF (ZERO WIDTH NO-BREAK SPACE) at character 9"),
    ("email_control_char.yaml", "email_control_char.yaml:4", "'ada\\x1b[2K@example.com' holds U+001B"),
    (
        "csv_email_invisible",
        "csv_email_invisible/people.csv:3",
        "holds U+200B (ZERO WIDTH SPACE) at character 6",
    ),
]


def test_corpus_is_complete() -> None:
    """Every case on disk is in the table (and the other way round), and there are >= 30."""
    on_disk = {p.name for p in BAD.iterdir() if not p.name.startswith(".")}
    assert on_disk == {case for case, _, _ in CASES}
    assert len(CASES) >= 30


@pytest.mark.parametrize("case,where,wording", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_location(case: str, where: str, wording: str) -> None:
    result = CliRunner().invoke(main, ["validate", str(BAD / case)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # errors go to stderr, nothing claims success
    file, _, line = where.partition(":")
    prefix = f"{BAD / file}:{line}:" if line else f"{BAD / file}: "
    matching = [ln for ln in result.stderr.splitlines() if ln.startswith(prefix)]
    assert matching, f"no diagnostic at {prefix!r} in:\n{result.stderr}"
    assert any(wording in ln for ln in matching), f"{wording!r} not in:\n{result.stderr}"
    lines = result.stderr.splitlines()
    assert len(set(lines)) == len(lines), "a problem is reported once"
    # The same diagnostics come from the library, and load() refuses with them.
    state, diagnostics = config.validate([BAD / case])
    assert state is None
    assert [str(d) for d in diagnostics] == result.stderr.splitlines()[:-1]
    with pytest.raises(config.ConfigError) as info:
        config.load([BAD / case])
    assert info.value.diagnostics == diagnostics
    # No error quotes much of a file: every line stays short, and no API key shows.
    assert all(len(ln) < 600 for ln in lines), max(lines, key=len)
    assert "re_test_0123456789" not in result.stderr
