package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/server/servertest"
	"github.com/messager/messager/internal/users"
)

// scaleNode is one node as serve runs it, an embedded NATS server and a
// messager server over real TLS, that hears no other node: other nodes
// are played by handing its subscription batches directly. It forgets
// no node for an hour, so a long benchmark keeps what it added.
func scaleNode(tb testing.TB, presence bool) (n *Node, stop func()) {
	tb.Helper()
	e, err := StartEmbedded(EmbedConfig{
		Cluster: "scale", NodeName: "a", Listen: "127.0.0.1:0", Secret: NewSecret(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	n, err = New(Config{Name: "scale", NodeName: "a", Connect: e.Connect, PeerTimeout: time.Hour})
	if err != nil {
		e.Shutdown()
		tb.Fatal(err)
	}
	s := servertest.Start(tb, servertest.Users{"alice": "pw-a"}, func(c *server.Config) {
		c.Cluster = n
		c.NoPresence = !presence
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			s.Stop()
			n.Close()
			e.Shutdown()
		})
	}
	tb.Cleanup(stop)
	if err := n.Attach(s.Server); err != nil {
		tb.Fatal(err)
	}
	return n, stop
}

// scalePeer is the id of the node the benchmarks play.
const scalePeer = "0123456789abcdef"

// scaleName is the name of user i: ten bytes, like "u000123456".
func scaleName(i int) string { return fmt.Sprintf("u%09d", i) }

// stampedBatches makes the batches that tell of users [from, to) with
// kind (O, of version-2 sessions, or F), each at most maxBatch bytes of
// records, as a link cuts them.
func stampedBatches(kind byte, from, to int, stamp int64) [][]byte {
	var out [][]byte
	b := append([]byte{'@'}, scalePeer+"\n"...)
	for i := from; i < to; i++ {
		if kind == recOnline {
			b = appendOnline(b, scaleName(i), stamp+int64(i), 2)
		} else {
			b = appendStamped(b, kind, scaleName(i), stamp+int64(i))
		}
		if len(b) > maxBatch-64 || i == to-1 {
			out = append(out, b)
			b = append([]byte{'@'}, scalePeer+"\n"...)
		}
	}
	return out
}

// BenchmarkDirectoryMemory measures what one user logged in on another
// node costs this node: the heap its directory entry and its claim take
// (B/user), the time to apply the O record that tells of the login and
// the F record of the logout (ns/login, ns/logout), and what is left
// once they all logged out again. Every node keeps such an entry for
// every user online elsewhere, so this is the figure a cluster's memory
// grows by per session, N-1 times over. With presence on, the server
// also notes each change for its next round (a set that keeps its room
// once grown); with it off, the directory alone.
func BenchmarkDirectoryMemory(b *testing.B) {
	const users = 100_000
	stamp := time.Now().UnixNano()
	logins := stampedBatches(recOnline, 0, users, stamp)
	logouts := stampedBatches(recOff, 0, users, stamp)
	var wire int
	for _, batch := range logins {
		wire += len(batch) - len(scalePeer) - 2
	}
	for _, presence := range []bool{false, true} {
		b.Run("presence="+strconv.FormatBool(presence), func(b *testing.B) {
			for b.Loop() {
				// A fresh node each time: a directory that held the
				// users once keeps its maps' room for them.
				n, stop := scaleNode(b, presence)
				// The first batch makes the peer (its link, its
				// state); it is not counted.
				n.receive(&nats.Msg{Data: append([]byte{'@'}, scalePeer+"\nO "+scaleName(users)+" 1\n"...)})
				runtime.GC()
				var before, after, gone runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				for _, batch := range logins {
					n.receive(&nats.Msg{Data: batch})
				}
				in := time.Since(start)
				runtime.GC()
				runtime.ReadMemStats(&after)
				if got := n.dirLen(); got != users+1 {
					b.Fatalf("directory holds %d users, want %d", got, users+1)
				}
				start = time.Now()
				for _, batch := range logouts {
					n.receive(&nats.Msg{Data: batch})
				}
				out := time.Since(start)
				if got := n.dirLen(); got != 1 {
					b.Fatalf("directory holds %d users after the logouts, want 1", got)
				}
				runtime.GC()
				runtime.ReadMemStats(&gone)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "B/user")
				// Go's maps keep their size once grown.
				b.ReportMetric(float64(int64(gone.HeapAlloc)-int64(before.HeapAlloc))/users, "B/user-after-logout")
				b.ReportMetric(float64(in.Nanoseconds())/users, "ns/login")
				b.ReportMetric(float64(out.Nanoseconds())/users, "ns/logout")
				b.ReportMetric(float64(wire)/users, "wire-B/login")
				stop()
			}
		})
	}
}

// BenchmarkUserTableMemory measures what one account costs every node:
// each loads the whole user table. The accounts have 10-byte names and
// distinct argon2id hashes of the default cost, as `messager user add`
// writes them, as many as fit the user file's size limit.
func BenchmarkUserTableMemory(b *testing.B) {
	var file bytes.Buffer
	accounts := 0
	for {
		var salt [16]byte
		var key [32]byte
		_, _ = rand.Read(salt[:])
		_, _ = rand.Read(key[:])
		line := fmt.Sprintf("%s,$argon2id$v=19$m=19456,t=2,p=1$%s$%s\n", scaleName(accounts),
			base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key[:]))
		if file.Len()+len(line) > users.MaxFileSize {
			break
		}
		file.WriteString(line)
		accounts++
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t, err := users.Parse(bytes.NewReader(file.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if t.Len() != accounts {
			b.Fatalf("%d accounts, want %d", t.Len(), accounts)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(accounts), "B/account")
		b.ReportMetric(float64(file.Len())/float64(accounts), "file-B/account")
		b.ReportMetric(float64(accounts), "accounts")
		runtime.KeepAlive(t)
	}
}

// dirLen is how many users the directory holds.
func (n *Node) dirLen() int {
	count := 0
	n.dir.names(func(string) { count++ })
	return count
}

// TestLinkBatches checks the cutting of a link's queue: every batch has
// the header, whole records and at most maxBatch bytes of them, and the
// records arrive all and in order, although each batch after the first
// got its header written over the end of the one before.
func TestLinkBatches(t *testing.T) {
	e, err := StartEmbedded(EmbedConfig{Cluster: "scale", NodeName: "a", Listen: "127.0.0.1:0", Secret: NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	n, err := New(Config{Name: "scale", NodeName: "a", Connect: e.Connect})
	if err != nil {
		t.Fatal(err)
	}
	defer n.nc.Close()
	sub, err := n.nc.SubscribeSync(n.inbox(scalePeer))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	l := newPeer(n, scalePeer).link
	// Queued before the link starts, so that one round takes them all:
	// about 2.5 batches' worth, of records of different lengths.
	const records = 6000
	text := bytes.Repeat([]byte("x"), 200)
	for i := range records {
		seq := strconv.AppendInt(nil, int64(i), 10)
		if !l.Forward([]byte("bob"), []byte("alice"), append(append(seq, ' '), text[:i%200]...)) {
			t.Fatalf("record %d refused", i)
		}
	}
	nc, err := e.Connect("link")
	if err != nil {
		t.Fatal(err)
	}
	l.start(nc)
	defer func() {
		l.close()
		n.wg.Wait()
	}()
	header := "@" + n.id + "\n"
	next, batches := 0, 0
	for next < records {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d records in %d batches: %v", next, batches, err)
		}
		batches++
		if !bytes.HasPrefix(m.Data, []byte(header)) {
			t.Fatalf("batch %d starts %q", batches, m.Data[:min(len(m.Data), 20)])
		}
		recs := m.Data[len(header):]
		if len(recs) > maxBatch || len(recs) == 0 || recs[len(recs)-1] != '\n' {
			t.Fatalf("batch %d: %d bytes of records, last byte %q", batches, len(recs), recs[len(recs)-1])
		}
		for len(recs) > 0 {
			i := bytes.IndexByte(recs, '\n')
			r, ok := parseRecord(recs[:i])
			recs = recs[i+1:]
			seq, _, _ := bytes.Cut(r.text, []byte(" "))
			if !ok || r.kind != recRelay || string(seq) != strconv.Itoa(next) || len(r.text) != len(seq)+1+next%200 {
				t.Fatalf("batch %d: record %q, want number %d", batches, servertest.Trunc(string(r.text)), next)
			}
			next++
		}
	}
	if batches < 3 {
		t.Errorf("%d records came in %d batches, want them cut at %d bytes", records, batches, maxBatch)
	}
}
