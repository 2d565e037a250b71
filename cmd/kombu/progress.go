package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress reports how far a long command is: a bar redrawn in place
// (count, percent, rate, ETA) on a terminal, a plain line every interval
// otherwise, so that logs stay readable.
type progress struct {
	w        io.Writer
	what     string
	tty      bool
	width    int
	interval time.Duration

	mu        sync.Mutex
	total     int // 0 when unknown
	done      int
	start     time.Time
	lastDraw  time.Time
	drawnOnce bool
}

func newProgress(w io.Writer, what string, total int, interval time.Duration) *progress {
	p := &progress{w: w, what: what, total: total, interval: interval, start: time.Now(), width: 80}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.interval = 100 * time.Millisecond
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			p.width = cols
		}
	}
	return p
}

// add counts n more messages done and redraws when it is time.
func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.total > 0 && p.done > p.total {
		p.total = p.done // the queue grew meanwhile
	}
	if time.Since(p.lastDraw) >= p.interval {
		p.draw()
	}
}

// finish draws the last state and ends the line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawnOnce {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) rate() float64 {
	el := time.Since(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(p.done) / el
}

func (p *progress) eta() string {
	r := p.rate()
	if p.total == 0 || r == 0 {
		return "?"
	}
	return (time.Duration(float64(p.total-p.done)/r+0.5) * time.Second).String()
}

func (p *progress) draw() {
	p.lastDraw = time.Now()
	p.drawnOnce = true
	r := p.rate()
	if !p.tty {
		if p.total > 0 {
			fmt.Fprintf(p.w, "%s %d/%d (%d%%), %.0f msg/s, ETA %s\n", p.what, p.done, p.total, 100*p.done/p.total, r, p.eta())
		} else {
			fmt.Fprintf(p.w, "%s %d, %.0f msg/s\n", p.what, p.done, r)
		}
		return
	}
	var line string
	if p.total > 0 {
		stats := fmt.Sprintf(" %d/%d %3d%% %6.0f msg/s ETA %s", p.done, p.total, 100*p.done/p.total, r, p.eta())
		barWidth := p.width - len(p.what) - len(stats) - 4
		if barWidth < 10 {
			barWidth = 10
		}
		fill := barWidth * p.done / p.total
		line = fmt.Sprintf("%s [%s%s]%s", p.what, strings.Repeat("=", fill), strings.Repeat(" ", barWidth-fill), stats)
	} else {
		line = fmt.Sprintf("%s %d %6.0f msg/s", p.what, p.done, r)
	}
	if len(line) > p.width-1 {
		line = line[:p.width-1]
	}
	// \r and clear-to-end-of-line redraw in place.
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
}
