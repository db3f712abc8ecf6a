module github.com/quorumsync/quorumsync/internal/chaos

go 1.26.0

replace github.com/quorumsync/quorumsync => ../..

require golang.org/x/sys v0.50.0
