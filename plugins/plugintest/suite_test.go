package plugintest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMemSource(t *testing.T) { RunSource(t, memSourceHarness("")) }
func TestMemTarget(t *testing.T) { RunTarget(t, memTargetHarness("")) }

// bugEnv tells a child test process which bug TestBuggy should run.
const bugEnv = "PLUGINTEST_BUG"

// TestBuggy runs the suite against a plugin with one bug. It only runs as
// the child process of TestSuiteCatchesBugs, where it is expected to fail.
func TestBuggy(t *testing.T) {
	bug := os.Getenv(bugEnv)
	if bug == "" {
		t.Skip("runs only under TestSuiteCatchesBugs")
	}
	kind, bug, _ := strings.Cut(bug, ":")
	if kind == "source" {
		RunSource(t, memSourceHarness(bug))
	} else {
		RunTarget(t, memTargetHarness(bug))
	}
}

// TestSuiteCatchesBugs checks that each contract violation fails the suite
// with a message that says what is wrong.
func TestSuiteCatchesBugs(t *testing.T) {
	tests := []struct {
		bug  string
		test string // the subtest that must fail
		want string
	}{
		{"source:open-unknown", "OpenUnknown", "want plugins.ErrNotFound"},
		{"source:leak", "Read", "plugin left behind"},
		{"source:close-twice", "Read", "second Close"},
		{"source:short-read", "ConcurrentRead", "ReadAt("},
		{"source:drop-extent", "Full", "disk rebuilt from zeros and the extents of Changes(nil)"},
		{"source:overlap", "Full", "overlaps or precedes"},
		{"source:delta-miss", "Incremental", "disk rebuilt from the base and the incremental's extents"},
		{"source:no-delta", "Incremental", "incremental reports Delta false"},
		{"source:live", "PointInTime", "snapshot read after the object changed"},
		{"target:no-zero", "Overwrite", "overwritten disk (unwritten ranges must read zero)"},
		{"target:visible-early", "WriteCommit", "before Commit: the disk exists"},
		{"target:abort-leak", "Abort", "plugin left behind"},
		{"target:no-exists", "ExistsWithoutOverwrite", "want plugins.ErrExists"},
		{"target:out-of-range", "WriteOutOfRange", "want an error"},
	}
	if os.Getenv(bugEnv) != "" {
		t.Skip("child process")
	}
	for _, tt := range tests {
		t.Run(tt.bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuggy$/^"+tt.test+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), bugEnv+"="+tt.bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a plugin with bug %s:\n%s", tt.bug, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("the suite failed without saying %q:\n%s", tt.want, out)
			}
		})
	}
}
