package placement

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	rack := func(r string) map[string]string { return map[string]string{"rack": r} }
	for _, tc := range []struct {
		name string
		m    Map
		want string // substring of the error; "" for valid
	}{
		{"empty", Map{}, ""},
		{"plain", Map{Nodes: cluster(3)}, ""},
		{"racks", Map{Nodes: racked(2, 2), Domain: "rack", Replicas: 3}, ""},
		{"more replicas than nodes", Map{Nodes: cluster(2), Replicas: 5}, ""},
		{"empty id", Map{Nodes: []Node{{ID: "", Weight: 1}}}, "node 0: empty id"},
		{"duplicate id", Map{Nodes: []Node{{ID: "a", Weight: 1}, {ID: "b", Weight: 1}, {ID: "a", Weight: 2}}}, `node "a": listed twice (entries 0 and 2)`},
		{"zero weight", Map{Nodes: []Node{{ID: "a"}}}, `node "a": weight 0 is not positive`},
		{"negative weight", Map{Nodes: []Node{{ID: "a", Weight: -1}}}, "weight -1"},
		{"NaN weight", Map{Nodes: []Node{{ID: "a", Weight: math.NaN()}}}, "weight NaN"},
		{"infinite weight", Map{Nodes: []Node{{ID: "a", Weight: math.Inf(1)}}}, "weight +Inf"},
		{"unknown state", Map{Nodes: []Node{{ID: "a", Weight: 1, State: 9}}}, "unknown state 9"},
		{"missing domain label", Map{Domain: "rack", Nodes: []Node{{ID: "a", Weight: 1, Labels: rack("r1")}, {ID: "b", Weight: 1}}}, `node "b": no "rack" label`},
		{"empty domain label", Map{Domain: "rack", Nodes: []Node{{ID: "a", Weight: 1, Labels: rack("")}}}, `node "a": no "rack" label`},
		{"negative replicas", Map{Nodes: cluster(3), Replicas: -1}, "replicas -1 not in [0, 16]"},
		{"too many replicas", Map{Nodes: cluster(3), Replicas: 17}, "replicas 17"},
	} {
		err := tc.m.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: Validate = nil, want an error containing %q", tc.name, tc.want)
		case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: Validate = %v, want ErrInvalid containing %q", tc.name, err, tc.want)
		}
	}
}

func TestStateText(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal([]State{Healthy, Draining, Dead})
	if err != nil || string(b) != `["healthy","draining","dead"]` {
		t.Fatalf("marshal states = %s, %v", b, err)
	}
	var got []State
	if err := json.Unmarshal(b, &got); err != nil || len(got) != 3 || got[1] != Draining || got[2] != Dead {
		t.Fatalf("unmarshal states = %v, %v", got, err)
	}
	if err := json.Unmarshal([]byte(`["gone"]`), &got); err == nil {
		t.Error("unmarshal of an unknown state succeeded")
	}
	if _, err := json.Marshal(State(7)); err == nil {
		t.Error("marshal of an unknown state succeeded")
	}
}
