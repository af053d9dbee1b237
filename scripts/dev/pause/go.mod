module kueuer.local/pause

go 1.22
