/*
 * The inode table of a session: nodeid -> {dev, ino, kernel file handle,
 * O_PATH descriptor, nlookup}.  Inodes are handles, never path strings, so
 * renames anywhere in the tree keep every nodeid valid and no name stored
 * by us can be made to point outside the export.
 *
 * Descriptors: an inode whose file handle we could get (name_to_handle_at)
 * keeps its O_PATH fd only while it is in the bounded LRU cache
 * (max_inodes_cached); evicted, it is reopened with open_by_handle_at() on
 * the export's mount when next used.  A filesystem without handles (or an
 * inode on another mount below the export) keeps its fd pinned for as long
 * as the kernel remembers the nodeid; the first such case is logged.
 *
 * Nodeids come from a 64-bit counter and are never reused in a session, so
 * a stale nodeid can only miss (ESTALE), never reach another inode.  The
 * root is nodeid 1 and lives as long as the session.
 *
 * Concurrency: everything here is under s->ilock; see fs_i.h for the
 * reference rule that lets handlers use fds without the lock.
 */
#include <errno.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_i.h"
#include "log.h"

/* ---- hash table ---- */

static size_t fs_htab_slot(const struct fs_htab *t, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (t->nb - 1);
}

int fs_htab_init(struct fs_htab *t, size_t nb)
{
	t->nb = nb;
	t->n = 0;
	t->b = calloc(nb, sizeof(*t->b));
	return t->b ? 0 : -ENOMEM;
}

void fs_htab_destroy(struct fs_htab *t)
{
	free(t->b);
	t->b = NULL;
	t->nb = t->n = 0;
}

struct fs_hnode *fs_htab_next(const struct fs_htab *t, struct fs_hnode *prev,
			      uint64_t key)
{
	struct fs_hnode *n;

	if (t->b == NULL)
		return NULL;
	n = prev ? prev->next : t->b[fs_htab_slot(t, key)];
	for (; n != NULL; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

struct fs_hnode *fs_htab_get(const struct fs_htab *t, uint64_t key)
{
	return fs_htab_next(t, NULL, key);
}

static void fs_htab_grow(struct fs_htab *t)
{
	struct fs_htab nt;
	size_t i;

	if (fs_htab_init(&nt, t->nb * 2) != 0)
		return;		/* keep the longer chains; still correct */
	for (i = 0; i < t->nb; i++) {
		struct fs_hnode *n = t->b[i], *next;

		for (; n != NULL; n = next) {
			size_t slot = fs_htab_slot(&nt, n->key);

			next = n->next;
			n->next = nt.b[slot];
			nt.b[slot] = n;
		}
	}
	free(t->b);
	t->b = nt.b;
	t->nb = nt.nb;
}

void fs_htab_put(struct fs_htab *t, struct fs_hnode *n)
{
	size_t slot;

	if (t->n >= t->nb)
		fs_htab_grow(t);
	slot = fs_htab_slot(t, n->key);
	n->next = t->b[slot];
	t->b[slot] = n;
	t->n++;
}

void fs_htab_del(struct fs_htab *t, struct fs_hnode *n)
{
	struct fs_hnode **pp = &t->b[fs_htab_slot(t, n->key)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			t->n--;
			return;
		}
	}
}

/* ---- LRU of evictable descriptors ---- */

static void lru_unlink(struct fs_session *s, struct fs_inode *ino)
{
	if (!ino->on_lru)
		return;
	if (ino->lru_prev)
		ino->lru_prev->lru_next = ino->lru_next;
	else
		s->lru_head = ino->lru_next;
	if (ino->lru_next)
		ino->lru_next->lru_prev = ino->lru_prev;
	else
		s->lru_tail = ino->lru_prev;
	ino->lru_prev = ino->lru_next = NULL;
	ino->on_lru = 0;
}

static void lru_push(struct fs_session *s, struct fs_inode *ino)
{
	if (ino->pinned || ino->fd < 0 || ino->on_lru)
		return;
	ino->lru_prev = NULL;
	ino->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = ino;
	else
		s->lru_tail = ino;
	s->lru_head = ino;
	ino->on_lru = 1;
}

/* Close least recently used idle descriptors beyond the bound. */
static void lru_evict(struct fs_session *s)
{
	while (s->ncached > s->max_cached && s->lru_tail != NULL) {
		struct fs_inode *ino = s->lru_tail;

		lru_unlink(s, ino);
		close(ino->fd);
		ino->fd = -1;
		s->ncached--;
	}
}

/* ---- inodes ---- */

static uint64_t fs_inode_idkey(dev_t dev, ino_t ino)
{
	return ((uint64_t)dev * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)ino;
}

/*
 * Unhash and free ino; returns its descriptor (or -1), which the caller
 * closes after dropping s->ilock: the last close of an unlinked file is
 * where the host filesystem frees it, which can take milliseconds that
 * the other queue workers should not wait for.
 */
static int inode_free_locked(struct fs_session *s, struct fs_inode *ino)
{
	int fd = ino->fd;

	fs_htab_del(&s->inodes, &ino->hn);
	fs_htab_del(&s->byid, &ino->hid);
	lru_unlink(s, ino);
	if (fd >= 0) {
		if (ino->pinned)
			s->npinned--;
		else
			s->ncached--;
	}
	fs_plocks_free(ino);
	free(ino->fh);
	free(ino);
	s->ninodes--;
	return fd;
}

/* Try name_to_handle_at; NULL if the inode cannot be reopened by handle. */
static struct file_handle *inode_handle(struct fs_session *s, int fd,
					int *mnt)
{
	struct file_handle *fh;

	if (!s->use_handles)
		return NULL;
	fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	if (fh == NULL)
		return NULL;
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", fh, mnt, AT_EMPTY_PATH) != 0 ||
	    *mnt != s->root_mnt_id) {
		free(fh);
		return NULL;
	}
	return fh;
}

int fs_inodes_init(struct fs_session *s, int root_fd)
{
	struct fs_inode *root;
	struct stat st;
	struct file_handle *fh;
	int mnt, fd;

	if (fstat(root_fd, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (fs_htab_init(&s->inodes, 256) != 0)
		return -ENOMEM;
	if (fs_htab_init(&s->byid, 256) != 0) {
		fs_htab_destroy(&s->inodes);
		return -ENOMEM;
	}
	root = calloc(1, sizeof(*root));
	if (root == NULL) {
		fs_htab_destroy(&s->inodes);
		fs_htab_destroy(&s->byid);
		return -ENOMEM;
	}

	/* Can this filesystem give and take file handles (as we run)? */
	fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	if (fh != NULL && s->mount_fd >= 0) {
		fh->handle_bytes = MAX_HANDLE_SZ;
		if (name_to_handle_at(root_fd, "", fh, &mnt,
		    AT_EMPTY_PATH) == 0) {
			fd = open_by_handle_at(s->mount_fd, fh,
			    O_PATH | O_CLOEXEC);
			if (fd >= 0) {
				close(fd);
				s->use_handles = 1;
				s->root_mnt_id = mnt;
			}
		}
		free(fh);
	}
	if (!s->use_handles)
		log_info("fs %s/%s: %s has no usable file handles (%s); "
			 "O_PATH descriptors stay pinned per live inode",
			 s->domain, s->tag, s->root_path, strerror(errno));

	root->nodeid = FUSE_ROOT_ID;
	root->hn.key = FUSE_ROOT_ID;
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->hid.key = fs_inode_idkey(st.st_dev, st.st_ino);
	root->type = st.st_mode & S_IFMT;
	root->fd = root_fd;
	root->pinned = 1;
	root->nlookup = 1;
	fs_htab_put(&s->inodes, &root->hn);
	fs_htab_put(&s->byid, &root->hid);
	s->root = root;
	s->ninodes = 1;
	s->npinned = 1;
	s->next_nodeid = FUSE_ROOT_ID + 1;
	return 0;
}

void fs_inodes_free(struct fs_session *s)
{
	size_t i;

	pthread_mutex_lock(&s->ilock);
	for (i = 0; i < s->inodes.nb; i++) {
		while (s->inodes.b[i] != NULL) {
			int fd = inode_free_locked(s, fs_container_of(
			    s->inodes.b[i], struct fs_inode, hn));

			if (fd >= 0)
				close(fd);
		}
	}
	s->root = NULL;
	pthread_mutex_unlock(&s->ilock);
	fs_htab_destroy(&s->inodes);
	fs_htab_destroy(&s->byid);
}

/* Take a reference: the inode leaves the LRU while in use. */
static void inode_ref_locked(struct fs_session *s, struct fs_inode *ino)
{
	if (ino->refs++ == 0)
		lru_unlink(s, ino);
}

void fs_inode_ref(struct fs_session *s, struct fs_inode *ino)
{
	pthread_mutex_lock(&s->ilock);
	inode_ref_locked(s, ino);
	pthread_mutex_unlock(&s->ilock);
}

struct fs_inode *fs_inode_get(struct fs_session *s, uint64_t nodeid, int *err)
{
	struct fs_hnode *hn;
	struct fs_inode *ino;
	struct stat st;
	int fd;

	if (nodeid == 0) {
		*err = -EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&s->ilock);
	hn = fs_htab_get(&s->inodes, nodeid);
	if (hn == NULL) {
		pthread_mutex_unlock(&s->ilock);
		*err = -ESTALE;
		return NULL;
	}
	ino = fs_container_of(hn, struct fs_inode, hn);
	if (ino->fd < 0) {
		/* Evicted: reopen by handle and make sure it is the same one. */
		fd = open_by_handle_at(s->mount_fd, ino->fh,
		    O_PATH | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) != 0 || st.st_ino != ino->ino ||
		    st.st_dev != ino->dev) {
			if (fd >= 0)
				close(fd);
			pthread_mutex_unlock(&s->ilock);
			*err = -ESTALE;
			return NULL;
		}
		ino->fd = fd;
		s->ncached++;
	}
	inode_ref_locked(s, ino);
	lru_evict(s);
	pthread_mutex_unlock(&s->ilock);
	return ino;
}

void fs_inode_put(struct fs_session *s, struct fs_inode *ino)
{
	int fd = -1;

	if (ino == NULL)
		return;
	pthread_mutex_lock(&s->ilock);
	if (--ino->refs == 0) {
		if (ino->nlookup == 0 && ino != s->root) {
			fd = inode_free_locked(s, ino);
		} else {
			lru_push(s, ino);
			lru_evict(s);
		}
	}
	pthread_mutex_unlock(&s->ilock);
	if (fd >= 0)
		close(fd);
}

static int handle_eq(const struct file_handle *a, const struct file_handle *b)
{
	return a->handle_type == b->handle_type &&
	    a->handle_bytes == b->handle_bytes &&
	    memcmp(a->f_handle, b->f_handle, a->handle_bytes) == 0;
}

int fs_inode_add(struct fs_session *s, int fd, const struct stat *st,
		 struct fs_inode **out)
{
	struct file_handle *fh;
	struct fs_hnode *hn;
	struct fs_inode *ino = NULL, *c;
	uint64_t key = fs_inode_idkey(st->st_dev, st->st_ino);
	int mnt = -1, spare = -1;
	static atomic_int warned_pin;

	fh = inode_handle(s, fd, &mnt);
	pthread_mutex_lock(&s->ilock);
	for (hn = fs_htab_get(&s->byid, key); hn != NULL;
	     hn = fs_htab_next(&s->byid, hn, key)) {
		c = fs_container_of(hn, struct fs_inode, hid);
		if (c->dev != st->st_dev || c->ino != st->st_ino)
			continue;
		/*
		 * Same (dev, ino) is the same inode only if the handles (which
		 * carry the generation) agree, or if the old one is pinned:
		 * its open fd keeps the inode number from being reused.
		 */
		if ((fh && c->fh && handle_eq(fh, c->fh)) ||
		    (!fh && !c->fh && c->fd >= 0)) {
			ino = c;
			break;
		}
	}
	if (ino != NULL) {
		ino->nlookup++;
		inode_ref_locked(s, ino);
		if (ino->fd < 0) {
			ino->fd = fd;
			s->ncached++;
		} else {
			spare = fd;
		}
		free(fh);
	} else {
		ino = calloc(1, sizeof(*ino));
		if (ino == NULL) {
			pthread_mutex_unlock(&s->ilock);
			free(fh);
			close(fd);
			return -ENOMEM;
		}
		ino->nodeid = s->next_nodeid++;
		ino->hn.key = ino->nodeid;
		ino->dev = st->st_dev;
		ino->ino = st->st_ino;
		ino->hid.key = key;
		ino->type = st->st_mode & S_IFMT;
		ino->fd = fd;
		ino->fh = fh;
		ino->pinned = fh == NULL;
		ino->nlookup = 1;
		ino->refs = 1;
		if (ino->pinned)
			s->npinned++;
		else
			s->ncached++;
		fs_htab_put(&s->inodes, &ino->hn);
		fs_htab_put(&s->byid, &ino->hid);
		s->ninodes++;
		if (ino->pinned && s->use_handles &&
		    atomic_exchange(&warned_pin, 1) == 0)
			log_info("fs %s/%s: an inode without a usable handle "
				 "(other mount?) keeps its descriptor pinned",
				 s->domain, s->tag);
	}
	lru_evict(s);
	pthread_mutex_unlock(&s->ilock);
	if (spare >= 0)
		close(spare);
	*out = ino;
	return 0;
}

void fs_inode_forget(struct fs_session *s, uint64_t nodeid, uint64_t n)
{
	struct fs_hnode *hn;
	struct fs_inode *ino;
	int fd = -1;

	if (nodeid == FUSE_ROOT_ID || nodeid == 0)
		return;
	pthread_mutex_lock(&s->ilock);
	hn = fs_htab_get(&s->inodes, nodeid);
	if (hn != NULL) {
		ino = fs_container_of(hn, struct fs_inode, hn);
		ino->nlookup = n >= ino->nlookup ? 0 : ino->nlookup - n;
		if (ino->nlookup == 0 && ino->refs == 0)
			fd = inode_free_locked(s, ino);
	}
	pthread_mutex_unlock(&s->ilock);
	if (fd >= 0)
		close(fd);
}

/*
 * Resolve one validated name under dirfd without following anything:
 * a symlink becomes an inode of its own, ".." and absolute paths cannot
 * appear (fs_name_ok), and RESOLVE_BENEATH makes sure of it anyway.
 */
int fs_lookup_fd(struct fs_session *s, int dirfd, const char *name)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
	    RESOLVE_NO_SYMLINKS;
	fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}
