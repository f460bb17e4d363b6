package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/messager/messager/internal/cluster"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Tools for running several nodes as one server",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "secret",
		Short: "Print a new cluster secret",
		Long: `Print a new cluster secret: 32 random bytes in base64.

Every node of a cluster reads the same secret with --cluster-secret FILE;
the routes between nodes are authenticated and encrypted with keys made
from it (see docs/operations.md). Keep the file mode 0600:

  messager cluster secret > cluster.secret && chmod 600 cluster.secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(cluster.NewSecret())
			return err
		},
	})
	argsAreUsage(cmd)
	for _, c := range cmd.Commands() {
		argsAreUsage(c)
	}
	return cmd
}

// clusterOptions are serve's cluster flags.
type clusterOptions struct {
	name      string
	nodeName  string
	listen    string
	routes    string
	secret    string
	natsURL   string
	natsCreds string
	natsCA    string
}

func (o *clusterOptions) register(f interface {
	StringVar(p *string, name, value, usage string)
}) {
	f.StringVar(&o.name, "cluster-name", "", "run as a node of this cluster (nodes with the same name and secret act as one server)")
	f.StringVar(&o.nodeName, "node-name", "", "this node's name in logs and operators' listings (default: host name and --listen port)")
	f.StringVar(&o.listen, "cluster-listen", "", "the route port other nodes connect to, HOST:PORT (an embedded NATS server; needs --cluster-secret)")
	f.StringVar(&o.routes, "routes", "", "other nodes' route ports, comma separated (nats-route://HOST:PORT,...)")
	f.StringVar(&o.secret, "cluster-secret", "", "the cluster secret `FILE` (mode 0600; make one with 'messager cluster secret')")
	f.StringVar(&o.natsURL, "nats", "", "use this existing NATS system instead of an embedded server (nats://... or tls://..., comma separated)")
	f.StringVar(&o.natsCreds, "nats-creds", "", "NATS credentials `FILE` for --nats")
	f.StringVar(&o.natsCA, "nats-ca", "", "CA `FILE` to verify --nats servers with")
}

// enabled reports whether the node is to be clustered.
func (o *clusterOptions) enabled() bool {
	return o.name != "" || o.listen != "" || o.routes != "" || o.natsURL != "" || o.secret != ""
}

// check checks the cluster flags' combination, before anything starts.
func (o *clusterOptions) check() error {
	if !o.enabled() {
		return nil
	}
	if o.natsURL == "" && o.name == "" {
		return usageError(errors.New("--cluster-listen, --routes and --cluster-secret need --cluster-name NAME"))
	}
	if o.name == "" {
		o.name = "messager"
	}
	if err := cluster.CheckName(o.name); err != nil {
		return usageError(fmt.Errorf("--cluster-name: %w", err))
	}
	if o.natsURL != "" {
		if o.listen != "" || o.routes != "" {
			return usageError(errors.New("--nats uses an existing NATS system: --cluster-listen and --routes are for the embedded one"))
		}
		return nil
	}
	if o.natsCreds != "" || o.natsCA != "" {
		return usageError(errors.New("--nats-creds and --nats-ca need --nats URL"))
	}
	if o.listen == "" {
		return usageError(errors.New("--cluster-name needs --cluster-listen HOST:PORT (the route port) or --nats URL"))
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return usageError(fmt.Errorf("--cluster-listen %q: %w", o.listen, err))
	}
	if o.secret == "" {
		return usageError(errors.New("a route port needs --cluster-secret FILE: without it anyone could join the cluster (make one with: messager cluster secret > FILE; chmod 600 FILE)"))
	}
	if _, err := cluster.ParseRoutes(o.routes); err != nil {
		return usageError(fmt.Errorf("--routes: %w", err))
	}
	return nil
}

// clusterNode is a started node and what stops it.
type clusterNode struct {
	node     *cluster.Node
	embedded *cluster.Embedded
}

// startCluster starts the node's part in the cluster: the embedded NATS
// server (or the connection to --nats) and the node, not yet attached.
func startCluster(o clusterOptions, listenAddr string, log *slog.Logger) (*clusterNode, error) {
	name := o.nodeName
	if name == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(listenAddr)
		name = host + ":" + port
	}
	cn := &clusterNode{}
	connect := cluster.ConnectExternal(cluster.ExternalConfig{URL: o.natsURL, CredsFile: o.natsCreds, CAFile: o.natsCA})
	if o.natsURL == "" {
		secret, err := cluster.LoadSecret(o.secret)
		if err != nil {
			return nil, err
		}
		routes, _ := cluster.ParseRoutes(o.routes) // checked before
		e, err := cluster.StartEmbedded(cluster.EmbedConfig{
			Cluster: o.name, NodeName: name, Listen: o.listen, Routes: routes, Secret: secret, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		cn.embedded = e
		connect = e.Connect
		log.Info("cluster routes", "addr", e.RouteAddr().String(), "routes", len(routes))
	}
	node, err := cluster.New(cluster.Config{Name: o.name, NodeName: name, Connect: connect, Logger: log})
	if err != nil {
		cn.stop()
		return nil, err
	}
	cn.node = node
	return cn, nil
}

// stop leaves the cluster; call it after the server has shut down.
func (cn *clusterNode) stop() {
	if cn == nil {
		return
	}
	if cn.node != nil {
		cn.node.Close()
	}
	if cn.embedded != nil {
		cn.embedded.Shutdown()
	}
}
