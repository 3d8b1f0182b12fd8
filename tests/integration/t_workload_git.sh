#!/usr/bin/env bash
# t_workload_git.sh: git as a metadata-heavy workload on a XenFS mount.
# git init in the mount, 1000 files added and rewritten over 100 commits,
# then git fsck --strict, git gc (packs, renames, unlinks), fsck again,
# commit and file counts, a clone out of the mount compared with the
# working tree, and fsck of the repository straight from the host export.
# timeout: 900
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd git diff
xf_need_bin xenfsd mount.xenfs

ok() { xf_log "ok: $*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

xf_shared_setup
xf_shared_mount

# a private, predictable git environment
export HOME=$W GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=xenfs \
    GIT_AUTHOR_EMAIL=xenfs@example.invalid GIT_COMMITTER_NAME=xenfs \
    GIT_COMMITTER_EMAIL=xenfs@example.invalid
git config --global init.defaultBranch main
git config --global safe.directory '*'
git config --global gc.auto 0

R=$M/repo
git init -q "$R" || xf_fail "git init in the mount"
[ -f "$EXP/repo/.git/HEAD" ] || xf_fail ".git/HEAD not on the host"
ok "git init ($(elapsed))"

ncommits=100 per=10
for c in $(seq 1 $ncommits); do
	d=$R/dir$(( (c - 1) % 20 ))
	mkdir -p "$d"
	for f in $(seq 1 $per); do
		i=$(( (c - 1) * per + f ))
		printf 'file %d of commit %d\n%s\n' "$i" "$c" \
		    "$(seq "$i" $((i + c % 7 * 50)))" >"$d/file$i.txt"
	done
	# every 5th commit also rewrites, renames and deletes earlier files
	if [ $((c % 5)) -eq 0 ] && [ "$c" -gt 5 ]; then
		echo "rewritten in $c" >>"$R/dir0/file1.txt"
		git -C "$R" mv -k "dir1/file$(( c - 4 )).txt" \
		    "dir1/moved$c.txt" 2>/dev/null
	fi
	git -C "$R" add -A || xf_fail "git add (commit $c)"
	git -C "$R" commit -q -m "commit $c" || xf_fail "git commit $c"
done
ok "$ncommits commits of $per files each ($(elapsed))"

xf_assert_eq "$(git -C "$R" rev-list --count HEAD)" $ncommits "commit count"
xf_assert_eq "$(git -C "$R" ls-files | wc -l)" $((ncommits * per)) "tracked files"
xf_assert_eq "$(git -C "$R" log --oneline | wc -l)" $ncommits "git log count"
xf_assert_eq "$(git -C "$R" log -1 --format=%s)" "commit $ncommits" "last subject"
[ -z "$(git -C "$R" status --porcelain)" ] || xf_fail "working tree not clean"
git -C "$R" fsck --strict --full --no-progress >"$W/fsck1" 2>&1 || {
	cat "$W/fsck1" >&2
	xf_fail "git fsck --strict before gc"
}
loose=$(git -C "$R" count-objects | cut -d' ' -f1)
ok "counts, clean status, fsck --strict ($loose loose objects, $(elapsed))"

git -C "$R" gc -q --prune=now || xf_fail "git gc"
xf_assert_eq "$(git -C "$R" count-objects | cut -d' ' -f1)" 0 "loose objects after gc"
ls "$R/.git/objects/pack/"*.pack >/dev/null 2>&1 || xf_fail "no pack after gc"
git -C "$R" fsck --strict --full --no-progress >"$W/fsck2" 2>&1 || {
	cat "$W/fsck2" >&2
	xf_fail "git fsck --strict after gc"
}
xf_assert_eq "$(git -C "$R" log --oneline | wc -l)" $ncommits "log count after gc"
[ -z "$(git -C "$R" status --porcelain)" ] || xf_fail "status not clean after gc"
ok "git gc packed everything; fsck --strict clean again ($(elapsed))"

# the repository as stored on the host is sound and matches the guest view
git -C "$EXP/repo" fsck --strict --full --no-progress >"$W/fsck3" 2>&1 || {
	cat "$W/fsck3" >&2
	xf_fail "git fsck of the repository directly in the host export"
}
xf_assert_eq "$(git -C "$EXP/repo" rev-parse HEAD)" \
    "$(git -C "$R" rev-parse HEAD)" "HEAD seen from host vs guest"
git clone -q "$R" "$W/clone" || xf_fail "git clone out of the mount"
diff -r --exclude=.git "$W/clone" "$R" >"$W/diff.out" 2>&1 || {
	head "$W/diff.out" >&2
	xf_fail "clone differs from the working tree in the mount"
}
ok "host-side fsck, HEAD agrees, clone out of the mount matches ($(elapsed))"

# branch switching rewrites many files
git -C "$R" checkout -q -b old HEAD~50 || xf_fail "checkout HEAD~50"
xf_assert_eq "$(git -C "$R" ls-files | wc -l)" $((50 * per)) "files at HEAD~50"
[ -z "$(git -C "$R" status --porcelain)" ] || xf_fail "status after checkout"
git -C "$R" checkout -q main || xf_fail "checkout main"
diff -r --exclude=.git "$W/clone" "$R" >/dev/null || xf_fail "tree after round trip"
ok "checkout of HEAD~50 and back ($(elapsed))"

rm -rf "$R" || xf_fail "rm -rf repo"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
