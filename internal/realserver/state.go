package realserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateVersion is the state file's format version.
const stateVersion = 1

// State is the state file: the configuration of the last setup and every
// item setup changed, with the value it had before the first change, so
// teardown can put back exactly what was there.
type State struct {
	Version int    `json:"version"`
	Config  Config `json:"config"`
	Items   []Item `json:"items"`
}

// record notes that it was changed. An item already recorded keeps its
// original Before: a second setup must not forget what was there first.
func (s *State) record(it Item) {
	for i := range s.Items {
		if s.Items[i].id() == it.id() {
			s.Items[i].After = it.After
			return
		}
	}
	s.Items = append(s.Items, it)
}

// LoadState reads the state file at path; a missing file is (nil, nil).
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this govsadm knows %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// save writes s to path atomically (a temporary file renamed over it).
func (s *State) save(path string) error {
	s.Version = stateVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".realserver-*.json")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state %s: %w", path, err)
	}
	return nil
}
