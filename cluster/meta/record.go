package meta

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Records are stored as one version byte followed by JSON, so a later format
// can be told apart and migrated rather than misread.
const recordV1 = 1

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode record: %v: %w", err, ErrInvalid)
	}
	out := make([]byte, 1+len(b))
	out[0] = recordV1
	copy(out[1:], b)
	return out, nil
}

func decode(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty record")
	}
	if b[0] != recordV1 {
		return fmt.Errorf("record version %d not supported", b[0])
	}
	return json.Unmarshal(b[1:], v)
}
