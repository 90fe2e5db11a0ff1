package view

import (
	"strconv"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Timeline shows each task as a bar from its start to its end (or now), relative to the job.
type Timeline struct {
	Rows []TimelineRow
	// Total is the span the bars cover.
	Total string
	// Empty is true when no task has started yet.
	Empty bool
}

// TimelineRow is one task of the timeline. X and W are in units of a 1000-wide track.
type TimelineRow struct {
	Name     string
	URL      string
	Status   Status
	Selected bool
	HasBar   bool
	X, W     float64
	Duration string
}

// TrackWidth is the width of the timeline's track in SVG units.
const TrackWidth = 1000

// XS and WS format the bar's geometry for SVG attributes.
func (r TimelineRow) XS() string { return strconv.FormatFloat(r.X, 'f', 1, 64) }
func (r TimelineRow) WS() string { return strconv.FormatFloat(r.W, 'f', 1, 64) }

// NewTimeline builds the timeline of job at now.
func NewTimeline(job *pipeline.Job, selected string, url func(task string) string, now time.Time) Timeline {
	var start, end time.Time
	for _, t := range job.Tasks {
		if t.Start != nil && (start.IsZero() || t.Start.Before(start)) {
			start = *t.Start
		}
		e := now
		if t.End != nil {
			e = *t.End
		} else if t.Start == nil {
			continue
		}
		if e.After(end) {
			end = e
		}
	}
	if job.Start != nil && (start.IsZero() || job.Start.Before(start)) {
		start = *job.Start
	}
	if job.End != nil && job.End.After(end) {
		end = *job.End
	} else if !job.Status.Final() && now.After(end) && !start.IsZero() {
		end = now
	}
	tl := Timeline{Empty: start.IsZero()}
	total := end.Sub(start)
	if total <= 0 {
		total = time.Millisecond
	}
	if !tl.Empty {
		tl.Total = Duration(end.Sub(start))
	}
	for _, t := range job.Tasks {
		r := TimelineRow{
			Name:     t.Name,
			URL:      url(t.Name),
			Status:   TaskStatus(t.Status),
			Selected: t.Name == selected,
			Duration: span(t.Start, t.End, now),
		}
		if t.Start != nil && !tl.Empty {
			e := now
			if t.End != nil {
				e = *t.End
			}
			if e.After(end) {
				e = end
			}
			r.HasBar = true
			r.X = clamp(float64(t.Start.Sub(start))/float64(total)*TrackWidth, 0, TrackWidth)
			r.W = clamp(float64(e.Sub(*t.Start))/float64(total)*TrackWidth, 0, TrackWidth-r.X)
			if r.W < 3 {
				// Very short tasks stay visible.
				r.W = 3
				if r.X > TrackWidth-3 {
					r.X = TrackWidth - 3
				}
			}
		}
		tl.Rows = append(tl.Rows, r)
	}
	return tl
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
