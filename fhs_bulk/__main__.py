from fhs_bulk.cli import main

main()
