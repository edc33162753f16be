package pgtest

import "syscall"

// procAttr runs the process as cred (nil: as this user) and makes the
// kernel stop it, immediately (SIGQUIT: PostgreSQL's immediate shutdown,
// which takes its children along), if the test binary dies without running
// its cleanups (a panic, a -timeout kill). Go sets the credentials before
// the death signal, which a credential change would otherwise clear.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
