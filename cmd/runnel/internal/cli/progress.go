package cli

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// progressLine redraws one status line on a terminal while a file is being
// produced: records acknowledged, their rate, bytes read and how far through
// the file that is.
type progressLine struct {
	w     io.Writer
	size  int64
	acked *atomic.Int64
	read  *atomic.Int64
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
}

// startProgress starts redrawing; size is the file's size, or -1 when
// unknown (then no percentage is shown).
func startProgress(w io.Writer, size int64, acked, read *atomic.Int64) *progressLine {
	p := &progressLine{w: w, size: size, acked: acked, read: read, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				// Erase the line so the summary that follows starts clean.
				fmt.Fprint(w, "\r\x1b[K")
				return
			case now := <-t.C:
				fmt.Fprint(w, "\r"+renderProgress(p.acked.Load(), p.read.Load(), p.size, now.Sub(p.start))+"\x1b[K")
			}
		}
	}()
	return p
}

// stop erases the line and waits for the redrawing to end. A nil
// progressLine (no terminal) does nothing.
func (p *progressLine) stop() {
	if p == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
}

// renderProgress formats one progress line.
func renderProgress(records, read, size int64, elapsed time.Duration) string {
	s := fmt.Sprintf("%s records  %s records/s  %s", humanCount(records), humanCount(rate(records, elapsed)), humanBytes(read))
	if size > 0 {
		pct := float64(read) * 100 / float64(size)
		s += fmt.Sprintf(" of %s  %3.0f%%", humanBytes(size), min(pct, 100))
	}
	return s
}

// rate is n per second over elapsed.
func rate(n int64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(float64(n) / elapsed.Seconds())
}

// humanBytes renders a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// humanCount renders a count with thousands separators.
func humanCount(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + humanCount(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// statusLine shows the state of a long operation on stderr: redrawn in
// place on a terminal, and otherwise printed as a new line each time it
// changes, so that logs keep every step.
type statusLine struct {
	w    io.Writer
	tty  bool
	what string
	last string
}

func newProgress(w io.Writer, what string) *statusLine {
	return &statusLine{w: w, tty: isTerminal(w), what: what}
}

func (s *statusLine) update(msg string) {
	if msg == s.last {
		return
	}
	s.last = msg
	if s.tty {
		fmt.Fprintf(s.w, "\r%s: %s\x1b[K", s.what, msg)
		return
	}
	fmt.Fprintf(s.w, "%s: %s\n", s.what, msg)
}

// done ends the line on a terminal.
func (s *statusLine) done() {
	if s.tty && s.last != "" {
		fmt.Fprint(s.w, "\r\x1b[K")
	}
}
