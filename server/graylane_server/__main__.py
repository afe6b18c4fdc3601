from graylane_server.cli import main

main()
