// Package policy holds the pure rules of backup policies: when a schedule
// is due and which restore points a retention policy keeps.
//
// Nothing here reads a clock, a disk or the network: every function takes
// the current time as an argument, so the scheduler, prune and their tests
// decide what "now" is. Schedules are evaluated in an IANA time zone; the
// zone database is embedded (time/tzdata) so a minimal appliance without
// /usr/share/zoneinfo behaves the same as a full one.
//
// The contract, in one place (docs/policies.md has the long form):
//   - Schedule.Next(after) is the first run strictly after after.
//   - A wall time skipped by a spring-forward change runs once, at the first
//     instant after the gap; a wall time repeated by a fall-back change runs
//     once, at its first occurrence.
//   - "monthly 31" clamps to the month's last day; cron day fields do not.
//   - Due reports at most one slot however many were missed.
//   - Plan puts every point in exactly one of keep and remove; a locked or
//     protected point is never removed; a Retention with no keep rule keeps
//     everything.
package policy

// The appliance may run on a host without a zone database; embedding it
// costs ~450 KB and makes time.LoadLocation independent of the host.
import _ "time/tzdata"
