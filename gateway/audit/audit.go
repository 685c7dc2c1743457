// Package audit writes the WAF's audit log: one JSON line per blocked (or
// flagged) transaction, with what matched, to a file bounded in size
// (rotated, a few old files kept). Writing never holds up a request: lines
// go through a bounded queue to one writer, and what does not fit is
// counted and dropped.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the audit log's setup.
type Config struct {
	// Path is the file; rotated copies are Path.1 (newest) to Path.Keep.
	Path string `yaml:"path"`
	// Relevant is "blocked" (the default: refused requests) or "flagged"
	// (detections too), as ModSecurity's SecAuditEngine RelevantOnly.
	Relevant string `yaml:"relevant"`
	// MaxSize is the size in bytes at which the file is rotated (default 100 MiB).
	MaxSize int64 `yaml:"max_size"`
	// Keep is how many rotated files stay (default 5).
	Keep int `yaml:"keep"`
	// QueueSize bounds the lines waiting for the writer (default 4096).
	QueueSize int `yaml:"queue_size"`
}

// SetDefaults fills what a config leaves out.
func (c *Config) SetDefaults() {
	if c.Relevant == "" {
		c.Relevant = "blocked"
	}
	if c.MaxSize == 0 {
		c.MaxSize = 100 << 20
	}
	if c.Keep == 0 {
		c.Keep = 5
	}
	if c.QueueSize == 0 {
		c.QueueSize = 4096
	}
}

// Validate reports every problem, each as "key: message".
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: is required"))
	}
	if c.Relevant != "blocked" && c.Relevant != "flagged" {
		errs = append(errs, fmt.Errorf("relevant: %q is not blocked or flagged", c.Relevant))
	}
	if c.MaxSize < 4096 || c.Keep < 0 || c.QueueSize < 1 {
		errs = append(errs, errors.New("max_size must be at least 4096, keep and queue_size positive"))
	}
	return errors.Join(errs...)
}

// Record is one audited transaction.
type Record struct {
	Time      time.Time           `json:"time"`
	RequestID string              `json:"request_id"`
	ClientIP  string              `json:"client_ip"`
	Method    string              `json:"method"`
	Host      string              `json:"host"`
	URI       string              `json:"uri"`
	Headers   map[string][]string `json:"headers"`
	Policy    string              `json:"policy"`
	Action    string              `json:"action"`
	Status    int                 `json:"status"`
	Score     int                 `json:"score"`
	Matches   []Match             `json:"matches"`
}

// Match is one matched rule in a record.
type Match struct {
	RuleID    int    `json:"rule_id"`
	Message   string `json:"msg"`
	Variable  string `json:"var"`
	Exclusion string `json:"exclusion,omitempty"`
}

// Log is an open audit log.
type Log struct {
	cfg     Config
	queue   chan []byte
	done    chan struct{}
	dropped atomic.Int64
	mu      sync.Mutex // guards f and size
	f       *os.File
	size    int64
	// OnError hears write and rotation failures (the log goes on).
	onError func(error)
}

// Open opens (creating) the file and starts the writer.
func Open(c Config, onError func(error)) (*Log, error) {
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	l := &Log{cfg: c, queue: make(chan []byte, c.QueueSize), done: make(chan struct{}), onError: onError}
	if err := l.open(); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	go l.write()
	return l, nil
}

// Wants tells whether a verdict's action is audited.
func (l *Log) Wants(action string) bool {
	return l != nil && (action == "block" || l.cfg.Relevant == "flagged" && action == "detect")
}

// Write queues a record; when the queue is full it is dropped and counted.
func (l *Log) Write(r *Record) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	select {
	case l.queue <- append(b, '\n'):
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts the records that found the queue full.
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// Close writes what is queued and closes the file.
func (l *Log) Close() error {
	close(l.queue)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

func (l *Log) open() error {
	f, err := os.OpenFile(l.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

func (l *Log) write() {
	defer close(l.done)
	for line := range l.queue {
		l.mu.Lock()
		if l.size+int64(len(line)) > l.cfg.MaxSize && l.size > 0 {
			if err := l.rotate(); err != nil && l.onError != nil {
				l.onError(err)
			}
		}
		n, err := l.f.Write(line)
		l.size += int64(n)
		l.mu.Unlock()
		if err != nil && l.onError != nil {
			l.onError(err)
		}
	}
}

// rotate shifts Path.i to Path.i+1 (dropping the oldest), Path to Path.1,
// and opens a new Path. l.mu is held.
func (l *Log) rotate() error {
	l.f.Close()
	os.Remove(l.cfg.Path + "." + strconv.Itoa(l.cfg.Keep))
	for i := l.cfg.Keep - 1; i >= 1; i-- {
		os.Rename(l.cfg.Path+"."+strconv.Itoa(i), l.cfg.Path+"."+strconv.Itoa(i+1))
	}
	if l.cfg.Keep > 0 {
		os.Rename(l.cfg.Path, l.cfg.Path+".1")
	} else {
		os.Remove(l.cfg.Path)
	}
	return l.open()
}
