package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/bmsgw/bmsgw/adapters/opcua"
	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// newOPCUADriver builds the OPC UA client of a connection. Server
// certificates are trusted from the connection's directory, by default
// <state_dir>/pki/trusted.
func newOPCUADriver(stateDir string, s *site.Site, c *site.Connection, logger *slog.Logger) (control.Driver, error) {
	o := c.OPCUA
	trust := o.TrustDir
	if trust == "" {
		trust = filepath.Join(stateDir, "pki", "trusted")
	}
	cert, key := o.CertificateFile, o.PrivateKeyFile
	if cert == "" && o.SecurityPolicy != "none" && stateDir != "" {
		uri := o.ApplicationURI
		if uri == "" {
			uri = opcua.DefaultApplicationURI
		}
		var err error
		if cert, key, err = opcua.EnsureCertificate(filepath.Join(stateDir, "pki", "own"), uri); err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
	}
	return opcua.New(opcua.Options{
		Name: s.ID + "/" + c.ID, Endpoint: o.Endpoint, ApplicationURI: o.ApplicationURI,
		UserCertificateFile: o.UserCertificateFile, UserPrivateKeyFile: o.UserPrivateKeyFile,
		BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
		SecurityPolicy: opcua.SecurityPolicy(o.SecurityPolicy), SecurityMode: opcua.SecurityMode(o.SecurityMode),
		Username: o.Username, Password: o.Password.Reveal(),
		CertificateFile: cert, PrivateKeyFile: key,
		TrustDir: trust, TrustOnFirstUse: o.TrustOnFirstUse,
		RequestTimeout: o.RequestTimeout, PublishingInterval: o.PublishingInterval, StaleAfter: o.StaleAfter,
	}, logger)
}

// startOPCUASim serves the points of one OPC UA connection on the
// loopback address its endpoint names, with security None (the most
// gopcua's server offers).
func startOPCUASim(ctx context.Context, s *site.Site, c *site.Connection, logger *slog.Logger) (func() error, error) {
	if err := loopbackURL(c.OPCUA.Endpoint); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.OPCUA.Endpoint)
	if err != nil {
		return nil, err
	}
	var points []*site.Point
	for _, id := range s.PointIDs() {
		if p := s.Points[id]; p.Connection == c.ID {
			points = append(points, p)
		}
	}
	srv, err := opcuasim.New(points, opcuasim.Options{Addr: u.Host}, logger.With("sim", s.ID+"/"+c.ID))
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("start OPC UA simulator on %s: %w", u.Host, err)
	}
	logger.Info("simulator started", "site", s.ID, "conn", c.ID, "endpoint", srv.Endpoint())
	return srv.Close, nil
}
