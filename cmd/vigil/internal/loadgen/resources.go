package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamUsage is what the run added to JetStream's storage.
type JetStreamUsage struct {
	// StoreBefore and StoreAfter are the account's stored bytes
	// (AccountInfo) before sending and once the read-back ended.
	StoreBefore uint64 `json:"store_bytes_before"`
	StoreAfter  uint64 `json:"store_bytes_after"`
	// Delta is StoreAfter - StoreBefore: negative when stream limits
	// dropped more than the run added.
	Delta int64 `json:"store_bytes_delta"`
	// BytesPerAlert is Delta over the unique alerts accepted; repeats,
	// resolutions and the events monitor published are in it too.
	BytesPerAlert float64       `json:"bytes_per_alert"`
	Streams       []StreamUsage `json:"streams"`
}

// StreamUsage is one stream's share of JetStreamUsage.
type StreamUsage struct {
	Name          string  `json:"name"`
	BytesBefore   uint64  `json:"bytes_before"`
	BytesAfter    uint64  `json:"bytes_after"`
	Delta         int64   `json:"bytes_delta"`
	BytesPerAlert float64 `json:"bytes_per_alert"`
}

// jetStreamSnapshot is JetStream's storage at one time.
type jetStreamSnapshot struct {
	store   uint64
	streams map[string]uint64
}

// jetStreamUsageAt connects to url and reads the account's and every
// stream's stored bytes.
func jetStreamUsageAt(ctx context.Context, url string, timeout time.Duration) (jetStreamSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := nats.Connect(url, nats.Name("vigil-bench"), nats.Timeout(timeout), nats.NoReconnect())
	if err != nil {
		return jetStreamSnapshot{}, fmt.Errorf("--nats-url: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return jetStreamSnapshot{}, fmt.Errorf("--nats-url: %w", err)
	}
	ai, err := js.AccountInfo(ctx)
	if err != nil {
		return jetStreamSnapshot{}, fmt.Errorf("--nats-url: JetStream account info: %w", err)
	}
	snap := jetStreamSnapshot{store: ai.Store, streams: map[string]uint64{}}
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		snap.streams[si.Config.Name] = si.State.Bytes
	}
	if err := streams.Err(); err != nil {
		return jetStreamSnapshot{}, fmt.Errorf("--nats-url: list streams: %w", err)
	}
	return snap, nil
}

func jetStreamUsage(before, after jetStreamSnapshot, alerts int64) *JetStreamUsage {
	u := &JetStreamUsage{StoreBefore: before.store, StoreAfter: after.store, Delta: int64(after.store) - int64(before.store)}
	u.BytesPerAlert = perAlert(u.Delta, alerts)
	names := make([]string, 0, len(after.streams))
	for name := range after.streams {
		names = append(names, name)
	}
	for name := range before.streams {
		if _, ok := after.streams[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		s := StreamUsage{Name: name, BytesBefore: before.streams[name], BytesAfter: after.streams[name]}
		s.Delta = int64(s.BytesAfter) - int64(s.BytesBefore)
		s.BytesPerAlert = perAlert(s.Delta, alerts)
		u.Streams = append(u.Streams, s)
	}
	return u
}

// PostgresUsage is what the run added to the database's size.
type PostgresUsage struct {
	// BytesBefore and BytesAfter are pg_database_size of the database
	// before sending and once the read-back ended: files on disk, which
	// grow by whole pages and not at once (WAL is not in it).
	BytesBefore   int64   `json:"bytes_before"`
	BytesAfter    int64   `json:"bytes_after"`
	Delta         int64   `json:"bytes_delta"`
	BytesPerAlert float64 `json:"bytes_per_alert"`
}

// databaseSize connects to url and reads the database's size.
func databaseSize(ctx context.Context, url string, timeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("--database-url: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var size int64
	if err := conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		return 0, fmt.Errorf("--database-url: pg_database_size: %w", err)
	}
	return size, nil
}

// ProcessUsage is the memory of the Vigil process during the run.
type ProcessUsage struct {
	PID int `json:"pid"`
	// PeakRSS is the highest VmRSS seen, sampled every 500ms from
	// before sending to the end of the read-back.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// RSSBefore is VmRSS before sending.
	RSSBefore int64 `json:"rss_bytes_before"`
	// HWM is VmHWM at the end: the peak resident set since the process
	// started, which may predate the run.
	HWM     int64 `json:"vm_hwm_bytes"`
	Samples int   `json:"samples"`
}

// rssInterval is how often the process's memory is sampled.
const rssInterval = 500 * time.Millisecond

// procMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("--pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("--pid %d: %s: %w", pid, name, err)
		}
		found++
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("--pid %d: %w", pid, err)
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("--pid %d: no VmRSS and VmHWM in /proc/%d/status (a kernel thread?)", pid, pid)
	}
	return rss, hwm, nil
}

// sampleMemory samples pid's memory until ctx ends, and once more then.
// When the process cannot be read any more, what was sampled is returned
// with the error.
func sampleMemory(ctx context.Context, pid int) (*ProcessUsage, error) {
	u := &ProcessUsage{PID: pid}
	sample := func() error {
		rss, hwm, err := procMemory(pid)
		if err != nil {
			return err
		}
		if u.Samples == 0 {
			u.RSSBefore = rss
		}
		u.Samples++
		u.PeakRSS, u.HWM = max(u.PeakRSS, rss), hwm
		return nil
	}
	t := time.NewTicker(rssInterval)
	defer t.Stop()
	for {
		if err := sample(); err != nil {
			return u, err
		}
		select {
		case <-ctx.Done():
			return u, sample()
		case <-t.C:
		}
	}
}

func perAlert(bytes, alerts int64) float64 {
	if alerts <= 0 {
		return 0
	}
	return float64(bytes) / float64(alerts)
}
