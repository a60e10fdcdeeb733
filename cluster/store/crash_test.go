package store_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
	"github.com/cairnhq/cairn/cluster/store"
	"github.com/cairnhq/cairn/cluster/store/storetest"
)

const (
	crashDirEnv  = "CAIRN_STORE_CRASH_DIR"
	crashSeedEnv = "CAIRN_STORE_CRASH_SEED"
	crashKey     = 9
)

var crashOpts = store.Options{MaxSegmentSize: 2 << 20}

// TestKill9 runs a child process that puts chunks from several goroutines
// and prints each ID once Put has returned, kills it with SIGKILL at a
// random moment, and checks that every acknowledged chunk survived whole.
// It does so a few times over the same directory, so later rounds recover
// from earlier crashes' torn tails too.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	key := storetest.NewMaker(t, crashKey, 0).Key()
	var acked []chunk.ID
	for round := range 4 {
		got := crashChild(t, dir, round)
		if len(got) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing", round)
		}
		acked = append(acked, got...)

		s, err := store.Open(dir, crashOpts)
		if err != nil {
			t.Fatalf("round %d: open after kill -9: %v", round, err)
		}
		for _, id := range acked {
			sealed, err := s.Get(ctx, id)
			if err != nil {
				t.Fatalf("round %d: acknowledged chunk lost: %v", round, err)
			}
			if _, err := key.Unseal(nil, id, sealed); err != nil {
				t.Fatalf("round %d: acknowledged chunk damaged: %v", round, err)
			}
		}
		st, err := s.Scrub(ctx, func(id chunk.ID, err error) error { return err })
		if err != nil {
			t.Fatalf("round %d: scrub after recovery: %v", round, err)
		}
		t.Logf("round %d: %d acknowledged, %d stored, %+v", round, len(got), st.Chunks, s.Stats())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashChild runs one child, kills it, and returns the IDs it acknowledged.
func crashChild(t *testing.T, dir string, round int) []chunk.ID {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	killAfter := 30 + rand.IntN(80)
	var acked []chunk.ID
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		hexID, ok := strings.CutPrefix(lines.Text(), "acked ")
		if !ok {
			continue
		}
		id, err := chunk.ParseID(hexID)
		if err != nil {
			t.Fatalf("child printed %q: %v", lines.Text(), err)
		}
		acked = append(acked, id)
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Lines the child wrote before it died are still read above.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited on its own after %d acks: %v", len(acked), err)
	}
	return acked
}

// TestCrashChild is the child half of TestKill9; it does nothing in a
// normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	s, err := store.Open(dir, crashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	mk := storetest.NewMaker(t, crashKey, seed+1)
	var mu sync.Mutex // one line per write, whole
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range 500 { // bounded, in case the parent dies first
				c := mk.Chunk(t, 1+rng.IntN(256<<10))
				if _, err := s.Put(ctx, c.ID, c.Sealed); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s\n", c.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
