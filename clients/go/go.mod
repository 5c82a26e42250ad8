module github.com/jobwire/jobwire/clients/go

go 1.19
