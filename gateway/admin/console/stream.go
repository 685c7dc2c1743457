package console

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// Stream is the fleet's events in a bounded Redis stream, which every
// replica writes to and any replica's console reads: one console shows
// the fleet. Writes leave the request path (a bounded queue; what does
// not fit is dropped, and kept in the local ring all the same). While
// Redis does not answer, the console shows this replica's ring.
type Stream struct {
	rdb    redis.UniversalClient
	key    string
	maxLen int64
	local  *Ring
	queue  chan Event
	done   chan struct{}
}

// StreamKey is the Redis stream the fleet's events are kept in.
const StreamKey = "sekisho:events"

// NewStream writes to and reads from rdb's stream, keeping about maxLen
// events, and this replica's last ones in local. Close stops its writer.
func NewStream(rdb redis.UniversalClient, maxLen int64, local *Ring) *Stream {
	s := &Stream{rdb: rdb, key: StreamKey, maxLen: maxLen, local: local, queue: make(chan Event, 1024), done: make(chan struct{})}
	go s.write()
	return s
}

// Add implements Store.
func (s *Stream) Add(e Event) {
	s.local.Add(e)
	select {
	case s.queue <- e:
	default: // Redis is slow: the local ring has it
	}
}

func (s *Stream) write() {
	for {
		select {
		case <-s.done:
			return
		case e := <-s.queue:
			b, _ := json.Marshal(e)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key, MaxLen: s.maxLen, Approx: true, Values: []any{"e", b}})
			cancel()
		}
	}
}

// Close stops the writer; an Add after it still reaches the local ring
// (a request of a retiring generation may end after its release).
func (s *Stream) Close() { close(s.done) }

// List implements Store: the fleet's events, newest first; this replica's
// when Redis does not answer.
func (s *Stream) List(ctx context.Context, f Filter, limit int) ([]Event, error) {
	var out []Event
	end := "+"
	for scanned := int64(0); len(out) < limit && scanned < s.maxLen; {
		msgs, err := s.rdb.XRevRangeN(ctx, s.key, end, "-", 500).Result()
		if err != nil {
			return s.local.List(ctx, f, limit)
		}
		for _, m := range msgs {
			var e Event
			if raw, ok := m.Values["e"].(string); ok && json.Unmarshal([]byte(raw), &e) == nil && f.matches(e) {
				out = append(out, e)
				if len(out) == limit {
					break
				}
			}
		}
		scanned += int64(len(msgs))
		if len(msgs) < 500 {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}
