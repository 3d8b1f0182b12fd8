#!/usr/bin/env python3
# treecmp.py A B: compare two directory trees bit for bit with metadata:
# type, content, mode, owner, mtime (ns), size, xattrs, link counts and
# hard-link groups, symlink targets, device numbers and sparse holes
# (the data/hole map from SEEK_DATA/SEEK_HOLE).  atime and ctime are not
# compared (reading changes the one, nothing can set the other).
# Exit 0 when equal, 1 with one line per difference.  Used by the
# snapshot integration tests (tests/integration/t_snap_*.sh).
import os, stat, sys

def holes(path, size):
    m = []
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        off = 0
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            m.append((d, h))
            off = h
    finally:
        os.close(fd)
    return m

def content(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)

def scan(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in [""] + dirs + files:
            if n == "" and d != root:
                continue
            p = os.path.join(d, n) if n else d
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            x = {}
            for a in sorted(os.listxattr(p, follow_symlinks=False)):
                x[a] = os.getxattr(p, a, follow_symlinks=False)
            e = {"type": stat.S_IFMT(st.st_mode), "mode": st.st_mode,
                 "uid": st.st_uid, "gid": st.st_gid, "xattrs": x,
                 "ino": st.st_ino}
            if not stat.S_ISLNK(st.st_mode):
                e["mtime"] = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                e["size"] = st.st_size
                e["nlink"] = st.st_nlink
                e["data"] = content(p)
                e["holes"] = holes(p, st.st_size)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = st.st_rdev
            out[rel] = e
    return out

def groups(t):
    g = {}
    for p, e in t.items():
        if e["type"] == stat.S_IFREG and e["nlink"] > 1:
            g.setdefault(e["ino"], []).append(p)
    return sorted(sorted(v) for v in g.values())

def main():
    a, b = scan(sys.argv[1]), scan(sys.argv[2])
    bad = []
    for p in sorted(set(a) | set(b)):
        if p not in a:
            bad.append("only in B: " + p)
            continue
        if p not in b:
            bad.append("only in A: " + p)
            continue
        for k in a[p]:
            if k == "ino":
                continue
            if a[p][k] != b[p].get(k):
                v1, v2 = a[p][k], b[p].get(k)
                if k == "data":
                    v1, v2 = "%d bytes" % len(v1), "%d bytes" % len(v2 or b"")
                bad.append("%s: %s differs: %r vs %r" % (p, k, v1, v2))
    if groups(a) != groups(b):
        bad.append("hard-link groups differ: %r vs %r" % (groups(a), groups(b)))
    for l in bad[:50]:
        print(l)
    sys.exit(1 if bad else 0)

main()
