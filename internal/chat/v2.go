package chat

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/messager/messager/internal/client"
	"github.com/messager/messager/internal/protocol"
)

// memory is what a session asked the server for that a new connection
// does not have: the groups it is in and the users it watches. The
// receive loop sends both again after every reconnection, quietly: the
// answers of a rejoin are not shown, and of the watched users' states
// only the changes are.
//
// The input loop changes it with the commands, the receive loop with the
// server's answers; mu guards it.
type memory struct {
	mu       sync.Mutex
	groups   []string          // joined or being joined, spelt as the server spells them once it answered
	watching []string          // watched users, in the order added
	state    map[string]bool   // the last state told of each watched user
	asked    map[string]bool   // users whose next state is shown, news or not: /watch asked for it
	quiet    map[string]bool   // keys of groups rejoined after a reconnection whose JOIN is not shown yet
	quietWho map[string]bool   // keys of groups whose member list (the WHO after a rejoin) is not shown
	spelling map[string]string // the server's spelling of each group by key
}

func newMemory() *memory {
	return &memory{
		state:    make(map[string]bool),
		asked:    make(map[string]bool),
		quiet:    make(map[string]bool),
		quietWho: make(map[string]bool),
		spelling: make(map[string]string),
	}
}

// addGroup remembers a group being joined; it reports whether it was new.
func (m *memory) addGroup(group string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := protocol.GroupKey(group)
	for _, g := range m.groups {
		if protocol.GroupKey(g) == key {
			return false
		}
	}
	m.groups = append(m.groups, group)
	return true
}

// dropGroup forgets a group; it reports whether it was remembered.
func (m *memory) dropGroup(group string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := protocol.GroupKey(group)
	delete(m.quiet, key)
	delete(m.quietWho, key)
	for i, g := range m.groups {
		if protocol.GroupKey(g) == key {
			m.groups = append(m.groups[:i], m.groups[i+1:]...)
			return true
		}
	}
	return false
}

// inGroup reports whether a group is remembered, joined or being joined.
func (m *memory) inGroup(group string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := protocol.GroupKey(group)
	for _, g := range m.groups {
		if protocol.GroupKey(g) == key {
			return true
		}
	}
	return false
}

// joined records the server's answer to this user's JOIN: its spelling
// of the group. It reports whether the answer is to be shown.
func (m *memory) joined(group string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := protocol.GroupKey(group)
	for i, g := range m.groups {
		if protocol.GroupKey(g) == key {
			m.groups[i] = group
		}
	}
	if m.quiet[key] {
		delete(m.quiet, key)
		m.quietWho[key] = true
		return false
	}
	return true
}

// memberList reports whether a WHO of a group is to be shown: not the
// one that follows a quiet rejoin.
func (m *memory) memberList(mask string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := protocol.GroupKey(mask)
	if m.quietWho[key] {
		delete(m.quietWho, key)
		return false
	}
	return true
}

// rejoin returns the groups and watched users to send on a new
// connection; when quiet, the groups' answers will not be shown.
func (m *memory) rejoin(quiet bool) (groups, watching []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if quiet {
		for _, g := range m.groups {
			m.quiet[protocol.GroupKey(g)] = true
		}
	}
	return append([]string(nil), m.groups...), append([]string(nil), m.watching...)
}

// forgetGroups forgets the groups, and forgetWatching the watched users,
// when a new connection's server does not offer them, and returns them.
func (m *memory) forgetGroups() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups
	m.groups = nil
	clear(m.quiet)
	clear(m.quietWho)
	return g
}

func (m *memory) forgetWatching() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.watching
	m.watching = nil
	clear(m.state)
	return w
}

// watch adds users to the watch list and returns those that are new.
func (m *memory) watch(names []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var added []string
	for _, name := range names {
		if !contains(m.watching, name) && !contains(added, name) {
			added = append(added, name)
		}
	}
	m.watching = append(m.watching, added...)
	return added
}

// ask makes the next state told of each of names news.
func (m *memory) ask(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range names {
		m.asked[name] = true
	}
}

// unwatch removes users from the watch list; nil removes all.
func (m *memory) unwatch(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if names == nil {
		m.watching = nil
		clear(m.state)
		clear(m.asked)
		return
	}
	kept := m.watching[:0]
	for _, w := range m.watching {
		if !contains(names, w) {
			kept = append(kept, w)
		}
	}
	m.watching = kept
	for _, name := range names {
		delete(m.state, name)
		delete(m.asked, name)
	}
}

// presence records the state of watched users and returns those whose
// state is news: told for the first time, or changed.
func (m *memory) presence(on bool, names []string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var news []string
	for _, name := range names {
		if !contains(m.watching, name) {
			continue
		}
		if old, known := m.state[name]; !known || old != on || m.asked[name] {
			news = append(news, name)
		}
		delete(m.asked, name)
		m.state[name] = on
	}
	return news
}

// watchList describes the watch list and what is known of each state.
func (m *memory) watchList() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.watching) == 0 {
		return "watching nobody; /watch NAME... to be told when users come and go"
	}
	parts := make([]string, len(m.watching))
	for i, name := range m.watching {
		on, known := m.state[name]
		switch {
		case !known:
			parts[i] = name
		case on:
			parts[i] = name + " (online)"
		default:
			parts[i] = name + " (offline)"
		}
	}
	return "watching " + strings.Join(parts, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// begin sends what the session asks of a new connection before anything
// else is sent on it: on the first one the groups and watched users of
// the configuration, shown as the server answers; after a reconnection
// the remembered ones, quietly. It runs before the connection is handed
// to the input loop.
func (s *session) begin(c *client.Conn, first bool) {
	if first {
		for _, g := range s.cfg.Join {
			s.mem.addGroup(g)
		}
		s.mem.watch(s.cfg.Watch)
	}
	groups, watching := s.mem.rejoin(!first)
	if len(groups) > 0 && !c.Offers(client.FeatureGroups) {
		s.mem.forgetGroups()
		s.out.notice("%s; not in %s", (&client.NotOfferedError{Feature: client.FeatureGroups}).Error(), client.Escape(strings.Join(groups, ", ")))
		groups = nil
	}
	if len(watching) > 0 && !c.Offers(client.FeaturePresence) {
		s.mem.forgetWatching()
		s.out.notice("%s; not watching %s", (&client.NotOfferedError{Feature: client.FeaturePresence}).Error(), strings.Join(watching, ", "))
		watching = nil
	}
	for _, g := range groups {
		// A failure here is a dropped connection, which the receive loop
		// is about to notice.
		if err := c.Join(g); err != nil {
			return
		}
	}
	if len(watching) > 0 {
		_ = c.Watch(watching...)
	}
}

// handle shows one event of version 2; it reports whether it knew it.
func (s *session) handle(ev client.Event) bool {
	switch ev := ev.(type) {
	case client.Fail:
		switch ev.Verb {
		case protocol.KindJoin.String():
			s.mem.dropGroup(ev.Subject)
			s.refused.Store(true)
		case protocol.KindWatch.String():
			s.mem.unwatch([]string{ev.Subject})
			s.refused.Store(true)
		case protocol.KindMsg.String():
			s.notOnline.Store(true)
		}
		s.out.fail(ev)
	case client.Presence:
		news := s.mem.presence(ev.On, ev.Names)
		if s.out.json {
			s.out.presence(ev)
		} else if len(news) > 0 {
			s.out.notice("%s", presenceText(ev.On, news))
		}
	case client.Who:
		if strings.HasPrefix(ev.Mask, "#") && !s.mem.memberList(ev.Mask) {
			return true
		}
		s.out.who(ev)
	case client.GroupJoin:
		if ev.User == s.user {
			if !s.mem.joined(ev.Group) {
				return true
			}
		}
		s.out.member(ev.Time, "join", ev.Group, ev.User, s.user)
	case client.GroupPart:
		if ev.User == s.user {
			s.mem.dropGroup(ev.Group)
		}
		s.out.member(ev.Time, "part", ev.Group, ev.User, s.user)
	default:
		return false
	}
	return true
}

// presenceText tells the state of some watched users: "bob is online",
// "bob and carol are offline".
func presenceText(on bool, names []string) string {
	verb := " is "
	if len(names) > 1 {
		verb = " are "
	}
	state := "offline"
	if on {
		state = "online"
	}
	return joinNames(names) + verb + state
}

// joinNames lists escaped names: "bob", "bob and carol", "bob, carol and
// dave".
func joinNames(names []string) string {
	escaped := make([]string, len(names))
	for i, n := range names {
		escaped[i] = client.Escape(n)
	}
	if len(escaped) <= 1 {
		return strings.Join(escaped, "")
	}
	return strings.Join(escaped[:len(escaped)-1], ", ") + " and " + escaped[len(escaped)-1]
}

// whoText describes a WHO answer.
func whoText(w client.Who) string {
	mask := client.Escape(w.Mask)
	names := make([]string, len(w.Names))
	for i, n := range w.Names {
		names[i] = client.Escape(n)
	}
	var b strings.Builder
	switch {
	case w.Count == 0 && strings.HasPrefix(w.Mask, "#"):
		return "nobody is in " + mask
	case w.Count == 0 && w.Mask == "*":
		return "nobody is online"
	case w.Count == 0 && strings.HasSuffix(w.Mask, "*"):
		return "nobody online matches " + mask
	case w.Count == 0:
		return mask + " is not online"
	case strings.HasPrefix(w.Mask, "#"):
		fmt.Fprintf(&b, "in %s (%d): ", mask, w.Count)
	case w.Mask == "*":
		fmt.Fprintf(&b, "online (%d): ", w.Count)
	case strings.HasSuffix(w.Mask, "*"):
		fmt.Fprintf(&b, "online matching %s (%d): ", mask, w.Count)
	default:
		return mask + " is online"
	}
	b.WriteString(strings.Join(names, " "))
	if more := w.More(); more > 0 {
		fmt.Fprintf(&b, " … and %d more (the server lists %d; narrow the mask, e.g. /who al*)", more, len(w.Names))
	}
	return b.String()
}

// splitList splits a command's arguments or a flag's value: names
// separated by spaces or commas.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

// ParseGroups reads a list of groups separated by commas or spaces
// ("#a,#b"), as --join and MESSAGER_JOIN give them.
func ParseGroups(s string) ([]string, error) {
	list := splitList(s)
	for _, g := range list {
		if !protocol.ValidGroupString(g) {
			return nil, &client.GroupError{Group: g}
		}
	}
	return list, nil
}

// ParseNames reads a list of user names separated by commas or spaces
// ("bob,carol"), as --watch and MESSAGER_WATCH give them.
func ParseNames(s string) ([]string, error) {
	list := splitList(s)
	for _, n := range list {
		if !protocol.ValidNameString(n) {
			return nil, &client.NameError{Name: n}
		}
	}
	return list, nil
}

// errNotConnected refuses a command while the session reconnects.
var errNotConnected = errors.New("not connected; try again once reconnected")

// setTarget makes name, a user or a group, the target of the lines typed
// from now on; a group the session is not in is joined. It reports
// whether the target changed, and tells why not.
func (s *session) setTarget(name string) bool {
	switch {
	case strings.HasPrefix(name, "#"):
		if !protocol.ValidGroupString(name) {
			s.out.notice("%s", client.Escape((&client.GroupError{Group: name}).Error()))
			return false
		}
		if !s.mem.inGroup(name) {
			if err := s.join(name); err != nil {
				s.out.notice("%s", client.Escape(err.Error()))
				return false
			}
		}
	case !protocol.ValidNameString(name):
		s.out.notice("%s", client.Escape((&client.NameError{Name: name}).Error()))
		return false
	}
	s.to = name
	return true
}

// firstTarget checks the configured target before the receive loop
// starts: a group is joined with the configured ones, when the server
// offers groups. It reports whether the target can be used.
func (s *session) firstTarget() bool {
	name := s.to
	switch {
	case !strings.HasPrefix(name, "#"):
		if protocol.ValidNameString(name) {
			return true
		}
		s.out.notice("%s", client.Escape((&client.NameError{Name: name}).Error()))
	case !protocol.ValidGroupString(name):
		s.out.notice("%s", client.Escape((&client.GroupError{Group: name}).Error()))
	case !s.cfg.Conn.Offers(client.FeatureGroups):
		s.out.notice("%s: %s", client.Escape(name), (&client.NotOfferedError{Feature: client.FeatureGroups}).Error())
	default:
		s.mem.addGroup(name)
		return true
	}
	return false
}

// join joins a group on the current connection and remembers it.
func (s *session) join(group string) error {
	c := s.current()
	if c == nil {
		return errNotConnected
	}
	if !c.Offers(client.FeatureGroups) {
		return &client.NotOfferedError{Feature: client.FeatureGroups}
	}
	added := s.mem.addGroup(group)
	if err := c.Join(group); err != nil {
		if added {
			s.mem.dropGroup(group)
		}
		return err
	}
	return nil
}

// addr is the address of the server the session is on, or was on last
// while it reconnects.
func (s *session) addr() string {
	if c := s.current(); c != nil {
		return c.Addr()
	}
	return s.cfg.Conn.Addr()
}

// v2Command runs the commands of version 2 typed on the terminal: /who,
// /watch, /unwatch, /join and /part, and explains /signup, which belongs
// to the login. It reports whether word was one.
func (s *session) v2Command(word, arg string) bool {
	var err error
	switch word {
	case "/who":
		err = s.whoCommand(arg)
	case "/watch":
		err = s.watchCommand(arg)
	case "/unwatch":
		err = s.unwatchCommand(arg)
	case "/join":
		err = s.joinCommand(arg)
	case "/part":
		err = s.partCommand(arg)
	case "/signup":
		// Sign-up makes an account instead of logging in; a session is
		// logged in already.
		s.out.notice("logged in as %s already: /signup works at the user or password prompt, before logging in; "+
			"or run: messager signup --server %s", client.Escape(s.user), client.Escape(s.addr()))
	default:
		return false
	}
	if err != nil {
		s.out.notice("%s", client.Escape(err.Error()))
	}
	return true
}

func (s *session) whoCommand(arg string) error {
	mask := arg
	if mask == "" {
		mask = "*"
	}
	c := s.current()
	if c == nil {
		return errNotConnected
	}
	return c.Who(mask)
}

func (s *session) watchCommand(arg string) error {
	if arg == "" {
		s.out.notice("%s", client.Escape(s.mem.watchList()))
		return nil
	}
	names, err := ParseNames(arg)
	if err != nil {
		return err
	}
	c := s.current()
	if c == nil {
		return errNotConnected
	}
	if !c.Offers(client.FeaturePresence) {
		return &client.NotOfferedError{Feature: client.FeaturePresence}
	}
	added := s.mem.watch(names)
	// Every name typed is asked again: the answer, the state now, is
	// shown even for names watched already.
	s.mem.ask(names)
	if err := c.Watch(names...); err != nil {
		s.mem.unwatch(added)
		return err
	}
	return nil
}

func (s *session) unwatchCommand(arg string) error {
	if arg == "" {
		return errors.New("whom? /unwatch NAME (or several), or /unwatch * for everyone")
	}
	c := s.current()
	if c == nil {
		return errNotConnected
	}
	if !c.Offers(client.FeaturePresence) {
		return &client.NotOfferedError{Feature: client.FeaturePresence}
	}
	if arg == "*" {
		s.mem.unwatch(nil)
		if err := c.UnwatchAll(); err != nil {
			return err
		}
		s.out.notice("watching nobody now")
		return nil
	}
	names, err := ParseNames(arg)
	if err != nil {
		return err
	}
	s.mem.unwatch(names)
	if err := c.Unwatch(names...); err != nil {
		return err
	}
	s.out.notice("stopped watching %s", joinNames(names))
	return nil
}

func (s *session) joinCommand(arg string) error {
	if arg == "" {
		return errors.New("which group? /join #GROUP (or several)")
	}
	groups, err := ParseGroups(arg)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := s.join(g); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) partCommand(arg string) error {
	group := arg
	if group == "" {
		if !strings.HasPrefix(s.to, "#") {
			return errors.New("which group? /part #GROUP (you are sending to a user)")
		}
		group = s.to
	}
	if !protocol.ValidGroupString(group) {
		return &client.GroupError{Group: group}
	}
	c := s.current()
	if c == nil {
		return errNotConnected
	}
	// Forgotten now, so that a reconnection before the answer does not
	// join it again.
	s.mem.dropGroup(group)
	return c.Part(group)
}
