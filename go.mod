module github.com/cairnhq/cairn

go 1.26

require (
	github.com/klauspost/compress v1.18.0
	github.com/spf13/cobra v1.9.1
	github.com/spf13/pflag v1.0.6
	go.etcd.io/bbolt v1.4.0
	golang.org/x/crypto v0.43.0
	golang.org/x/sys v0.37.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	golang.org/x/term v0.36.0 // indirect
)
