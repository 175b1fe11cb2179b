package nic

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Options says where the test's sockets live. The zero value uses the
// calling process's network namespace.
type Options struct {
	// Netns, if not empty, is a network namespace: a name created by
	// `ip netns add` (looked up under /run/netns) or a path such as
	// /proc/PID/ns/net. Sockets and ioctls are made inside it; a socket
	// keeps its namespace for its lifetime.
	Netns string
}

func netnsPath(ns string) string {
	if strings.ContainsRune(ns, '/') {
		return ns
	}
	return "/run/netns/" + ns
}

// inNetns runs fn on a goroutine whose OS thread has joined the network
// namespace ns (or directly when ns is empty) and returns fn's error. If the
// thread cannot return to its original namespace it stays locked, so that
// the runtime discards it when the goroutine exits.
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	path := netnsPath(ns)
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("network namespace %q cannot be opened: %w", ns, mapErrno(err))
	}
	defer unix.Close(target)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("current network namespace cannot be opened: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("joining network namespace %q: %w", ns, mapErrno(err))
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			done <- fmt.Errorf("leaving network namespace %q: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// mapErrno turns the errnos callers branch on into this package's
// sentinels, keeping the errno in the chain.
func mapErrno(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w (%w): run as root or grant CAP_NET_RAW", ErrPermission, err)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%w (%w)", ErrNoInterface, err)
	}
	return err
}
