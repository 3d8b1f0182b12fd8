#!/usr/bin/env bash
# timeout: 90
# Hostile names: a file whose name is not valid UTF-8 and one carrying
# terminal escape sequences, created by a guest, are indexed, found, and
# printed safely (escaped as \xNN, one line each) by default, exactly
# (raw bytes) with -0, and as valid JSON with --json.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfs-services xenfs-search
xf_config_std
cat >>"$XF_CONF" <<EOF2
[services]
plugins = indexer
plugin-dir = $O/lib/xenfs
EOF2
xf_start_backend "$XF_CONF"
"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$W/services.log" 2>&1 </dev/null &
XF_DAEMONS+=("$!")
xf_mount "$(xf_sock vm1)" shared "$W/m"
S() { "$BIN/xenfs-search" -C "$XF_CONF" "$@"; }

bad=$(printf 'evil\377\376name')
esc=$(printf 'clear\033[2J\033]0;pwned\007\rx\nline')
: >"$W/m/$bad" || xf_fail "create non-UTF-8 name"
: >"$W/m/$esc" || xf_fail "create escape name"
echo "some text" >"$W/m/$esc-content" || xf_fail "create"

found() { S --vm vm1 "$@" >/dev/null 2>&1; }
xf_wait_until 3 found evil || xf_fail "non-UTF-8 name not found"
xf_wait_until 3 found clear || xf_fail "escape name not found"

# default output: escaped, one line per file, no raw control bytes
out=$(S --vm vm1 evil)
xf_assert_eq "$out" 'vm1:/evil\xff\xfename' "escaped non-UTF-8"
out=$(S --vm vm1 -b 'clear*line')
xf_assert_eq "$out" 'vm1:/clear\x1b[2J\x1b]0;pwned\x07\x0dx\nline' "escaped escapes"
S --vm vm1 clear | LC_ALL=C grep -q "$(printf '[\001-\037\177]')" &&
	xf_fail "raw control bytes reached the terminal output"
n=$(S --vm vm1 clear | wc -l)
xf_assert_eq "$n" 2 "one line per file"
# matching with the raw bytes works too
out=$(S --vm vm1 "$(printf '\377\376')")
xf_assert_eq "$out" 'vm1:/evil\xff\xfename' "raw-byte pattern"

# -0: exact bytes, NUL-terminated
S --vm vm1 -0 evil >"$W/z" || xf_fail "-0"
printf 'vm1:/%s\0' "$bad" >"$W/want"
cmp -s "$W/z" "$W/want" || { od -c "$W/z" >&2; xf_fail "-0 not exact"; }
S --vm vm1 -0 -b 'clear*line' >"$W/z" || xf_fail "-0 escape"
printf 'vm1:/%s\0' "$esc" >"$W/want"
cmp -s "$W/z" "$W/want" || { od -c "$W/z" >&2; xf_fail "-0 escape name not exact"; }

# --json: valid JSON, escaped the same way
if command -v python3 >/dev/null; then
	S --vm vm1 --json clear evil | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    assert o["vm"] == "vm1", o
    assert not any(ord(c) < 32 for c in o["path"]), o
' || xf_fail "--json is not valid JSON"
fi
S --vm vm1 --content text >/dev/null || xf_fail "content of escape-named file"
exit 0
