package audit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestReopenOnSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := ReopenOnSIGHUP(l, func(err error) { t.Error(err) })
	defer stop()
	if err := l.Write(rec(0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The new file exists once the signal was handled, before any Write.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reopen the audit file within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Write(rec(1)); err != nil {
		t.Fatal(err)
	}
	if got := sessions(t, path+".1", path); len(got) != 2 || got[0] != "s-0" || got[1] != "s-1" {
		t.Fatalf("lines %v, want s-0 in the old file and s-1 in the new", got)
	}
	stop()
	stop() // idempotent
}
