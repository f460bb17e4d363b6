package operator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/messager/messager/internal/admin"
)

// Peers are the other nodes of a cluster, as operators' actions reach
// them: a request to every other node, and the answers that come.
type Peers interface {
	// Ask sends req to every other node and returns their answers and
	// how many nodes were asked.
	Ask(ctx context.Context, req []byte) (answers [][]byte, asked int, err error)
	// HandleAsk sets what answers the other nodes' requests.
	HandleAsk(func(req []byte) []byte)
	// Name is this node's name.
	Name() string
}

// peerRequest is an operator's action sent to the other nodes.
type peerRequest struct {
	Op      string  `json:"op"` // sessions, kick, ban, unban, notice
	User    string  `json:"user,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	Target  string  `json:"target,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	To      string  `json:"to,omitempty"`
	Text    string  `json:"text,omitempty"`
}

// peerAnswer is a node's answer to a peerRequest.
type peerAnswer struct {
	Node     string          `json:"node"`
	Sessions []admin.Session `json:"sessions,omitempty"`
	Done     bool            `json:"done,omitempty"` // kicked, unbanned
	Count    int             `json:"count,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// askTimeout bounds an action's wait for the other nodes.
const askTimeout = 3 * time.Second

// SetPeers makes the operator's actions act on the whole cluster: this
// node answers the others' requests, and its own actions go to every
// node.
func (o *Operator) SetPeers(p Peers) {
	o.peers = p
	p.HandleAsk(o.answerPeer)
}

// answerPeer carries out another node's request on this node only.
func (o *Operator) answerPeer(b []byte) []byte {
	var req peerRequest
	ans := peerAnswer{Node: o.peers.Name()}
	if err := json.Unmarshal(b, &req); err != nil {
		ans.Error = "bad request: " + err.Error()
	} else {
		var err error
		switch req.Op {
		case "sessions":
			ans.Sessions = o.localSessions(req.User)
		case "kick":
			ans.Done = o.srv.Kick(req.User)
		case "ban":
			var ban admin.Ban
			ban, err = o.localBan(req.Target, time.Duration(req.Seconds*float64(time.Second)), req.Reason)
			ans.Count = ban.Sessions
		case "unban":
			ans.Done, err = o.localUnban(req.Target)
		case "notice":
			ans.Count, err = o.srv.Notice(req.To, req.Text)
		default:
			ans.Error = "unknown request " + req.Op
		}
		if err != nil {
			ans.Error = err.Error()
		}
	}
	out, _ := json.Marshal(ans)
	return out
}

// askPeers sends req to the other nodes and returns their answers; it
// logs those that failed or did not answer.
func (o *Operator) askPeers(req peerRequest) []peerAnswer {
	if o.peers == nil {
		return nil
	}
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	raw, asked, err := o.peers.Ask(ctx, b)
	if err != nil {
		o.cfg.Logger.Warn("operator action not sent to the other nodes", "op", req.Op, "err", err)
		return nil
	}
	if len(raw) < asked {
		o.cfg.Logger.Warn("some nodes did not answer an operator action", "op", req.Op, "asked", asked, "answered", len(raw))
	}
	var out []peerAnswer
	for _, r := range raw {
		var a peerAnswer
		if err := json.Unmarshal(r, &a); err != nil {
			continue
		}
		if a.Error != "" {
			o.cfg.Logger.Warn("operator action failed on another node", "op", req.Op, "peer", a.Node, "err", a.Error)
		}
		out = append(out, a)
	}
	return out
}
