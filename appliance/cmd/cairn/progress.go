package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// progress shows a followed job on stderr.
type progress interface {
	show(j meta.Job) // after every read of the job
	end(j meta.Job)  // the job is done
	stop()           // following stopped before the job was done
}

// newProgress returns a redrawn bar when stderr is a terminal, and plain
// lines at most every lineEvery otherwise.
func (a *app) newProgress() progress {
	if a.isTerminal() {
		return &bar{a: a}
	}
	return &lines{a: a}
}

// rateWindow is how far back the transfer rate looks.
const rateWindow = 10 * time.Second

// rate estimates bytes per second over the last rateWindow.
type rate struct {
	times []time.Time
	done  []int64
}

func (r *rate) add(t time.Time, done int64) {
	r.times = append(r.times, t)
	r.done = append(r.done, done)
	for len(r.times) > 2 && t.Sub(r.times[1]) >= rateWindow {
		r.times, r.done = r.times[1:], r.done[1:]
	}
}

// perSecond is the rate, or 0 while unknown.
func (r *rate) perSecond() float64 {
	n := len(r.times)
	if n < 2 {
		return 0
	}
	dt := r.times[n-1].Sub(r.times[0]).Seconds()
	if dt <= 0 {
		return 0
	}
	return max(float64(r.done[n-1]-r.done[0])/dt, 0)
}

// stats renders done/total, rate and time left.
func stats(p meta.Progress, perSec float64) []string {
	var parts []string
	if p.Total > 0 {
		parts = append(parts, humanBytes(p.Done)+" / "+humanBytes(p.Total))
	} else if p.Done > 0 {
		parts = append(parts, humanBytes(p.Done))
	}
	if perSec > 0 {
		parts = append(parts, humanBytes(int64(perSec))+"/s")
		if p.Total > p.Done {
			left := time.Duration(float64(p.Total-p.Done) / perSec * float64(time.Second))
			if left < time.Second {
				parts = append(parts, "ETA <1s")
			} else {
				parts = append(parts, "ETA "+seconds(left))
			}
		}
	}
	return parts
}

// notes writes the job's messages not written yet.
func notes(w io.Writer, j meta.Job, seen *int) bool {
	if *seen >= len(j.Messages) {
		return false
	}
	for _, m := range j.Messages[*seen:] {
		fmt.Fprintf(w, "note: %s\n", m)
	}
	*seen = len(j.Messages)
	return true
}

// bar redraws one line in place.
type bar struct {
	a     *app
	r     rate
	seen  int
	drawn bool
}

func (b *bar) show(j meta.Job) {
	b.r.add(b.a.now(), j.Progress.Done)
	if b.seen < len(j.Messages) {
		b.clear()
		notes(b.a.stderr, j, &b.seen)
	}
	b.draw(j)
}

func (b *bar) end(meta.Job) {
	fmt.Fprintln(b.a.stderr) // show has drawn the final state
}

func (b *bar) stop() {
	if b.drawn {
		fmt.Fprintln(b.a.stderr)
	}
}

func (b *bar) clear() {
	if b.drawn {
		fmt.Fprint(b.a.stderr, "\r\x1b[K")
	}
}

func (b *bar) draw(j meta.Job) {
	fmt.Fprint(b.a.stderr, "\r"+barLine(j, b.r.perSecond(), b.a.termWidth())+"\x1b[K")
	b.drawn = true
}

// barTail is the room kept right of the bar, so that the bar's length
// does not change as the numbers do.
const barTail = 50

// barLine renders "backup [=====>    ]  42%  1.2 GiB / 3.0 GiB  210 MiB/s
// ETA 9s" to fit width.
func barLine(j meta.Job, perSec float64, width int) string {
	tail := strings.Join(stats(j.Progress, perSec), "  ")
	if j.Done() {
		tail = j.State + "  " + humanBytes(j.Progress.Done)
	}
	head := j.Kind
	if j.Progress.Total > 0 {
		pct := fmt.Sprintf("%3d%%", j.Progress.Done*100/j.Progress.Total)
		cells := min(max(width-len(head)-len(pct)-barTail, 10), 40)
		filled := int(int64(cells) * min(j.Progress.Done, j.Progress.Total) / j.Progress.Total)
		b := strings.Repeat("=", filled)
		if filled < cells {
			b += ">" + strings.Repeat(" ", cells-filled-1)
		}
		head += " [" + b + "] " + pct
	} else if !j.Done() {
		head += " " + j.State
	}
	line := head + "  " + tail
	if width > 1 && len(line) >= width {
		line = line[:width-1]
	}
	return line
}

// lines writes a progress line when the state changes and otherwise at
// most every lineEvery.
type lines struct {
	a     *app
	r     rate
	seen  int
	last  time.Time
	state string
}

func (l *lines) show(j meta.Job) {
	now := l.a.now()
	l.r.add(now, j.Progress.Done)
	notes(l.a.stderr, j, &l.seen)
	if j.Done() || (j.State == l.state && now.Sub(l.last) < l.a.lineEvery) {
		return
	}
	l.last, l.state = now, j.State
	parts := []string{fmt.Sprintf("%s job %s: %s", j.Kind, j.ID, j.State)}
	if pct := percent(j.Progress.Done, j.Progress.Total); pct != "" {
		parts[0] += " " + pct
	}
	parts = append(parts, stats(j.Progress, l.r.perSecond())...)
	fmt.Fprintln(l.a.stderr, strings.Join(parts, ", "))
}

func (l *lines) end(j meta.Job) {
	line := fmt.Sprintf("%s job %s: %s", j.Kind, j.ID, j.State)
	if j.Progress.Done > 0 {
		line += ", " + humanBytes(j.Progress.Done)
	}
	if !j.Started.IsZero() && !j.Finished.IsZero() {
		line += " in " + seconds(j.Finished.Sub(j.Started))
	}
	fmt.Fprintln(l.a.stderr, line)
}

func (l *lines) stop() {}
