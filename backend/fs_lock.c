/*
 * Locks: GETLK, SETLK, SETLKW (POSIX record locks and, with FUSE_LK_FLOCK,
 * flock(2)), and INTERRUPT of a blocked SETLKW.
 *
 * POSIX locks belong to a lock owner (the guest's files_struct), not to a
 * file handle, so each (inode, owner) pair gets its own open file
 * description and the host's OFD locks (F_OFD_*) do the work, as virtiofsd
 * does: locks of different owners conflict, locks of one owner merge.
 * FLUSH with the owner (the guest closed a descriptor) closes that
 * description, which releases the owner's locks on the inode.  flock locks
 * belong to the open file, i.e. our file handle's fd.
 *
 * Blocking: SETLKW never blocks a queue worker.  It returns FS_DEFERRED and
 * a dedicated thread (at most FS_MAX_DEFERRED per session, else ENOLCK)
 * waits in fcntl(F_OFD_SETLKW)/flock(); INTERRUPT of its unique and
 * fs_session_cancel_deferred() set a flag and pthread_kill() it with
 * SIGUSR2, whose handler does nothing and is installed without SA_RESTART,
 * so the wait fails with EINTR and the request completes with EINTR via
 * fs_complete().  The only thread-shared state is the session's deferred
 * list under dfr_lock; a thread unlinks itself under that lock before it
 * exits, so a thread found on the list is alive and may be signalled.
 *
 * Process-wide effect (documented for the daemon's author): this module
 * installs a no-op SIGUSR2 handler once.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"
#include "log.h"

#define FS_LOCK_SIGNAL	SIGUSR2
#define FS_OFFSET_MAX	0x7fffffffffffffffULL

struct fs_plock {
	struct fs_plock *next;
	uint64_t owner;
	int fd;
	unsigned refs;
	int dead;		/* unlinked: close when the last user goes */
};

struct fs_deferred {
	struct fs_deferred *next;
	struct fs_session *s;
	pthread_t tid;
	uint64_t unique;
	void *token;
	void *out;
	uint32_t outcap;
	int is_flock;
	int flock_op;
	struct flock fl;
	struct fs_plock *pl;
	struct fs_inode *ino;
	struct fs_file *f;
	atomic_int cancelled;
};

/* ---- signal ---- */

static void fs_lock_sig(int sig)
{
	(void)sig;		/* only there to interrupt a blocking call */
}

static pthread_once_t fs_lock_once = PTHREAD_ONCE_INIT;

static void fs_lock_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fs_lock_sig;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: the wait must see EINTR */
	if (sigaction(FS_LOCK_SIGNAL, &sa, NULL) != 0)
		log_warn("fs: sigaction SIGUSR2");
}

void fs_locks_init_once(void)
{
	pthread_once(&fs_lock_once, fs_lock_install);
}

/* ---- per-(inode, owner) descriptors ---- */

static void plock_close(struct fs_plock *pl)
{
	close(pl->fd);
	free(pl);
}

void fs_plocks_free(struct fs_inode *ino)
{
	struct fs_plock *pl, *next;

	/* called with ilock held as the inode goes; no user is left */
	for (pl = ino->plocks; pl != NULL; pl = next) {
		next = pl->next;
		plock_close(pl);
	}
	ino->plocks = NULL;
}

static struct fs_plock *plock_find(struct fs_inode *ino, uint64_t owner)
{
	struct fs_plock *pl;

	for (pl = ino->plocks; pl != NULL; pl = pl->next)
		if (pl->owner == owner)
			return pl;
	return NULL;
}

/* The owner's descriptor, referenced; created when `create`. */
static int plock_get(struct fs_session *s, struct fs_inode *ino,
		     uint64_t owner, int create, struct fs_plock **out)
{
	struct fs_plock *pl, *np;
	int fd;

	pthread_mutex_lock(&s->ilock);
	if ((pl = plock_find(ino, owner)) != NULL) {
		pl->refs++;
		pthread_mutex_unlock(&s->ilock);
		*out = pl;
		return 0;
	}
	pthread_mutex_unlock(&s->ilock);
	if (!create)
		return -ENOENT;
	fd = fs_reopen(s, ino, O_RDWR | O_NONBLOCK);
	if (fd < 0)
		fd = fs_reopen(s, ino, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	if ((np = calloc(1, sizeof(*np))) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	np->owner = owner;
	np->fd = fd;
	np->refs = 1;
	pthread_mutex_lock(&s->ilock);
	if ((pl = plock_find(ino, owner)) != NULL) {
		pl->refs++;	/* lost a race: use the other one */
	} else {
		np->next = ino->plocks;
		ino->plocks = np;
		pl = np;
		np = NULL;
	}
	pthread_mutex_unlock(&s->ilock);
	if (np != NULL)
		plock_close(np);
	*out = pl;
	return 0;
}

static void plock_put(struct fs_session *s, struct fs_plock *pl)
{
	int last;

	if (pl == NULL)
		return;
	pthread_mutex_lock(&s->ilock);
	last = --pl->refs == 0 && pl->dead;
	pthread_mutex_unlock(&s->ilock);
	if (last)
		plock_close(pl);
}

void fs_plock_drop_owner(struct fs_session *s, struct fs_inode *ino,
			 uint64_t owner)
{
	struct fs_plock **pp, *pl = NULL;

	pthread_mutex_lock(&s->ilock);
	for (pp = &ino->plocks; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->owner == owner) {
			pl = *pp;
			*pp = pl->next;
			pl->dead = 1;
			if (pl->refs > 0)
				pl = NULL;	/* last user closes it */
			break;
		}
	}
	pthread_mutex_unlock(&s->ilock);
	if (pl != NULL)
		plock_close(pl);
}

/* ---- conversions ---- */

static int lk_to_flock(const struct fuse_file_lock *lk, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	if (lk->start > FS_OFFSET_MAX || lk->end < lk->start)
		return -EINVAL;
	fl->l_type = (short)lk->type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)lk->start;
	if (lk->end >= FS_OFFSET_MAX)
		fl->l_len = 0;
	else
		fl->l_len = (off_t)(lk->end - lk->start + 1);
	fl->l_pid = 0;		/* required by F_OFD_* */
	return 0;
}

static int lk_to_flock_op(uint32_t type, int *op)
{
	switch (type) {
	case F_RDLCK:
		*op = LOCK_SH;
		return 0;
	case F_WRLCK:
		*op = LOCK_EX;
		return 0;
	case F_UNLCK:
		*op = LOCK_UN;
		return 0;
	}
	return -EINVAL;
}

/* ---- GETLK / SETLK ---- */

uint32_t fs_op_getlk(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_lk_in *in = req->arg;
	struct fuse_lk_out out;
	struct fs_inode *ino;
	struct fs_plock *pl;
	struct flock fl;
	int rc;

	if ((rc = lk_to_flock(&in->lk, &fl)) != 0)
		return fs_reply_err(req, rc);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = plock_get(s, ino, in->owner, 1, &pl)) == 0) {
		rc = fcntl(pl->fd, F_OFD_GETLK, &fl) ? -errno : 0;
		plock_put(s, pl);
	}
	fs_inode_put(s, ino);
	if (rc)
		return fs_reply_err(req, rc);
	memset(&out, 0, sizeof(out));
	out.lk.type = (uint32_t)fl.l_type;
	if (fl.l_type == F_UNLCK) {
		out.lk.start = in->lk.start;
		out.lk.end = in->lk.end;
	} else {
		out.lk.start = (uint64_t)fl.l_start;
		out.lk.end = fl.l_len == 0 ? FS_OFFSET_MAX :
		    (uint64_t)(fl.l_start + fl.l_len - 1);
	}
	out.lk.pid = 0;		/* the owner is in another domain */
	return fs_reply(req, &out, sizeof(out));
}

static uint32_t do_flock(struct fs_session *s, struct fs_req *req, int wait);

uint32_t fs_op_setlk(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_lk_in *in = req->arg;
	struct fs_inode *ino;
	struct fs_plock *pl;
	struct flock fl;
	int rc;

	if (in->lk_flags & FUSE_LK_FLOCK)
		return do_flock(s, req, 0);
	if ((rc = lk_to_flock(&in->lk, &fl)) != 0)
		return fs_reply_err(req, rc);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	rc = plock_get(s, ino, in->owner, fl.l_type != F_UNLCK, &pl);
	if (rc == 0) {
		rc = fcntl(pl->fd, F_OFD_SETLK, &fl) ? -errno : 0;
		plock_put(s, pl);
	} else if (rc == -ENOENT) {
		rc = 0;		/* unlocking what was never locked */
	}
	fs_inode_put(s, ino);
	if (rc == -EACCES)
		rc = -EAGAIN;
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

/* ---- deferred waits ---- */

static void *deferred_main(void *arg)
{
	struct fs_deferred *d = arg;
	struct fs_session *s = d->s;
	struct fs_req r;
	sigset_t set;
	uint32_t len;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, FS_LOCK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;) {
		if (atomic_load(&d->cancelled)) {
			rc = -EINTR;
			break;
		}
		if (d->is_flock)
			rc = flock(d->f->fd, d->flock_op) ? -errno : 0;
		else
			rc = fcntl(d->pl->fd, F_OFD_SETLKW, &d->fl) ?
			    -errno : 0;
		if (rc != -EINTR)
			break;
		/* EINTR without a cancel: some other signal; wait again */
	}
	memset(&r, 0, sizeof(r));
	r.in.unique = d->unique;
	r.out = d->out;
	r.outcap = d->outcap;
	len = rc ? fs_reply_err(&r, rc) : fs_reply(&r, NULL, 0);
	plock_put(s, d->pl);
	fs_file_put(s, d->f);
	fs_inode_put(s, d->ino);
	fs_complete(d->token, len);

	pthread_mutex_lock(&s->dfr_lock);
	{
		struct fs_deferred **pp;

		for (pp = &s->dfr; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == d) {
				*pp = d->next;
				break;
			}
		}
	}
	s->ndfr--;
	pthread_cond_broadcast(&s->dfr_cond);
	pthread_mutex_unlock(&s->dfr_lock);
	free(d);
	return NULL;
}

/* Start the waiting thread for d; consumes d (and its references). */
static uint32_t deferred_start(struct fs_session *s, struct fs_req *req,
			       struct fs_deferred *d)
{
	pthread_attr_t attr;
	int rc;

	d->s = s;
	d->unique = req->in.unique;
	d->token = req->token;
	d->out = req->out;
	d->outcap = req->outcap;
	atomic_init(&d->cancelled, 0);
	pthread_mutex_lock(&s->dfr_lock);
	if (s->ndfr >= FS_MAX_DEFERRED) {
		rc = -ENOLCK;
		goto fail;
	}
	if ((rc = pthread_attr_init(&attr)) != 0) {
		rc = -rc;
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	rc = pthread_create(&d->tid, &attr, deferred_main, d);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		rc = rc == EAGAIN ? -ENOLCK : -rc;
		goto fail;
	}
	/* the thread cannot unlink itself before we release dfr_lock */
	d->next = s->dfr;
	s->dfr = d;
	s->ndfr++;
	pthread_mutex_unlock(&s->dfr_lock);
	return FS_DEFERRED;
fail:
	pthread_mutex_unlock(&s->dfr_lock);
	plock_put(s, d->pl);
	fs_file_put(s, d->f);
	fs_inode_put(s, d->ino);
	free(d);
	return fs_reply_err(req, rc);
}

static uint32_t do_flock(struct fs_session *s, struct fs_req *req, int wait)
{
	const struct fuse_lk_in *in = req->arg;
	struct fs_deferred *d;
	struct fs_file *f;
	int op, rc;

	if ((rc = lk_to_flock_op(in->lk.type, &op)) != 0)
		return fs_reply_err(req, rc);
	if ((f = fs_file_get(s, in->fh)) == NULL)
		return fs_reply_err(req, EBADF);
	if (!wait || op == LOCK_UN) {
		rc = flock(f->fd, op | LOCK_NB) ? -errno : 0;
		fs_file_put(s, f);
		if (rc == -EWOULDBLOCK)
			rc = -EAGAIN;
		return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		fs_file_put(s, f);
		return fs_reply_err(req, ENOMEM);
	}
	d->is_flock = 1;
	d->flock_op = op;
	d->f = f;
	return deferred_start(s, req, d);
}

uint32_t fs_op_setlkw(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_lk_in *in = req->arg;
	struct fs_deferred *d;
	struct fs_inode *ino;
	struct fs_plock *pl;
	struct flock fl;
	int rc;

	if (in->lk_flags & FUSE_LK_FLOCK)
		return do_flock(s, req, 1);
	if ((rc = lk_to_flock(&in->lk, &fl)) != 0)
		return fs_reply_err(req, rc);
	if (fl.l_type == F_UNLCK)
		return fs_op_setlk(s, req);	/* never blocks */
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = plock_get(s, ino, in->owner, 1, &pl)) != 0) {
		fs_inode_put(s, ino);
		return fs_reply_err(req, rc);
	}
	/* uncontended: no thread needed */
	if (fcntl(pl->fd, F_OFD_SETLK, &fl) == 0) {
		plock_put(s, pl);
		fs_inode_put(s, ino);
		return fs_reply(req, NULL, 0);
	}
	if (errno != EAGAIN && errno != EACCES) {
		rc = -errno;
		plock_put(s, pl);
		fs_inode_put(s, ino);
		return fs_reply_err(req, rc);
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		plock_put(s, pl);
		fs_inode_put(s, ino);
		return fs_reply_err(req, ENOMEM);
	}
	d->fl = fl;
	d->pl = pl;
	d->ino = ino;
	return deferred_start(s, req, d);
}

/* ---- interrupts and teardown ---- */

static int interrupt_one(struct fs_session *s, uint64_t unique)
{
	struct fs_deferred *d;

	for (d = s->dfr; d != NULL; d = d->next) {
		if (d->unique == unique) {
			atomic_store(&d->cancelled, 1);
			pthread_kill(d->tid, FS_LOCK_SIGNAL);
			return 1;
		}
	}
	return 0;
}

uint32_t fs_op_interrupt(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_interrupt_in *in = req->arg;
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	int tries;

	/*
	 * A signal that lands between the thread's flag check and its
	 * syscall is lost; retry briefly while the request is still there.
	 */
	for (tries = 0; tries < 5; tries++) {
		int found;

		pthread_mutex_lock(&s->dfr_lock);
		found = interrupt_one(s, in->unique);
		pthread_mutex_unlock(&s->dfr_lock);
		if (!found)
			break;
		nanosleep(&ts, NULL);
	}
	return FS_NO_REPLY;
}

void fs_session_cancel_deferred(struct fs_session *s)
{
	struct fs_deferred *d;
	struct timespec until;

	pthread_mutex_lock(&s->dfr_lock);
	while (s->ndfr > 0) {
		for (d = s->dfr; d != NULL; d = d->next) {
			atomic_store(&d->cancelled, 1);
			pthread_kill(d->tid, FS_LOCK_SIGNAL);
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 10 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->dfr_cond, &s->dfr_lock, &until);
	}
	pthread_mutex_unlock(&s->dfr_lock);
}
