package chat

import (
	"io"
	"sync"

	"github.com/chzyer/readline"
)

// heldRaw keeps the terminal in raw mode for the whole session. The line
// editor would put it back to normal after every line, and in between the
// terminal itself would echo what is typed ahead, so that a message
// printed then shares a line with half a typed line. Ctrl-Z still gives
// the shell a normal terminal while the program is stopped.
type heldRaw struct {
	fd int

	mu         sync.Mutex
	saved      *readline.State // the state before the session; nil while not raw
	suspending bool            // Ctrl-Z was typed: the next exit is real
}

// enter makes the terminal raw, unless it is already.
func (h *heldRaw) enter() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.suspending = false
	if h.saved != nil {
		return nil
	}
	st, err := readline.MakeRaw(h.fd)
	if err != nil {
		return err
	}
	h.saved = st
	return nil
}

// exit is the line editor's end of raw mode: ignored, except to suspend.
func (h *heldRaw) exit() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.suspending {
		return nil
	}
	return h.restoreLocked()
}

// filter sees every key before the line editor: Ctrl-Z makes the next
// exit a real one, since the editor then stops the program.
func (h *heldRaw) filter(r rune) (rune, bool) {
	if r == readline.CharCtrlZ {
		h.mu.Lock()
		h.suspending = true
		h.mu.Unlock()
	}
	return r, true
}

// restore puts the terminal back as it was before the session.
func (h *heldRaw) restore() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.restoreLocked()
}

func (h *heldRaw) restoreLocked() error {
	if h.saved == nil {
		return nil
	}
	err := readline.Restore(h.fd, h.saved)
	h.saved = nil
	return err
}

// lineStart is what the terminal writer puts before output written while
// the line editor is not reading: back to the start of the line, and
// clear it, so that nothing typed or drawn there shares the line. The
// line editor draws its prompt and the typed line again when it reads.
const lineStart = "\r\x1b[K"

// termWriter writes asynchronous output on the terminal. While the line
// editor reads, its own writer clears the line being typed, writes, and
// draws the line again; otherwise the line is cleared first.
type termWriter struct {
	rl *readline.Instance
	w  io.Writer // the line editor's writer
}

func (t termWriter) Write(b []byte) (int, error) {
	if t.rl.Terminal.IsReading() {
		return t.w.Write(b)
	}
	out := make([]byte, 0, len(lineStart)+len(b))
	out = append(append(out, lineStart...), b...)
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
