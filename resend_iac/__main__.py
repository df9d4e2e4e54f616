from resend_iac.cli import main

main()
