package audit

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ReopenOnSIGHUP reopens l whenever the process receives SIGHUP (the
// signal logrotate's postrotate sends) until stop is called. Errors from
// Reopen go to onErr, which may be nil. stop waits for the watching
// goroutine to end.
func ReopenOnSIGHUP(l *Log, onErr func(error)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				if err := l.Reopen(); err != nil && onErr != nil {
					onErr(err)
				}
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			wg.Wait()
		})
	}
}
